"""`mediaflow`: the command line. `serve` runs the API (with in-process workers on the embedded
default), `worker` runs a worker process; the client commands talk to a running server.

Exit codes scripts can rely on: 0 success, 1 the job failed or was canceled, 2 usage or input error,
3 the server could not be reached or answered with an unexpected error.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import socket
import sys
from typing import TYPE_CHECKING

from mediaflow.client.commands import add_client_commands  # light (httpx + stdlib): the client commands start quickly

if TYPE_CHECKING:
    from mediaflow.settings import Settings


def dashboard_url(host: str, port: int) -> str:
    """Where a browser on this machine finds the dashboard of a server bound to host:port."""
    if host in ("", "0.0.0.0", "::"):  # bound to every address: this machine reaches it on loopback
        host = "127.0.0.1"
    return f"http://[{host}]:{port}/ui/" if ":" in host else f"http://{host}:{port}/ui/"


def bind_listening_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything starts: a port already taken is found before the app
    opens its store and starts its workers, and said in words, not as uvicorn's bare `[Errno 98]`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart need not wait
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def port_taken_message(host: str, port: int) -> str:
    other = port + 1
    url = dashboard_url(host, other).removesuffix("/ui/")
    return (
        f"mediaflow serve: port {port} on {host} is taken (another MediaFlow, or another program). "
        f"Start on another port: `mediaflow serve --port {other}` (or `scripts/serve.sh --port {other}`), "
        f"then point the CLI at it with MEDIAFLOW_URL={url} and a browser at {url}/ui/"
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from mediaflow.settings import Settings  # imported here, not at the top: client commands never need it

    settings = Settings()
    if args.workers is not None:
        settings = settings.model_copy(update={"API_WORKERS": args.workers})
    host = args.host or settings.API_HOST
    port = settings.API_PORT if args.port is None else args.port
    # Bound before uvicorn and the app are even imported: a taken port is said within a second.
    try:
        sock = bind_listening_socket(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(port_taken_message(host, port), file=sys.stderr)
            return 3
        print(f"mediaflow serve: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 3
    with sock:
        return run_server(settings, sock, host, port)


def run_server(settings: Settings, sock: socket.socket, host: str, port: int) -> int:
    import uvicorn

    from mediaflow.api.app import create_app
    from mediaflow.api.server import uvicorn_options

    class AnnouncingServer(uvicorn.Server):
        """Says where the dashboard is once the socket is open: uvicorn's own line names only the
        server's root, which answers JSON."""

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started and self.servers and self.servers[0].sockets:
                real = self.servers[0].sockets[0].getsockname()[1]  # the real port, also for --port 0
                print(f"Dashboard: {dashboard_url(self.config.host, real)}", file=sys.stderr, flush=True)

    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.LOG_LEVEL.lower(),
        timeout_graceful_shutdown=int(settings.SHUTDOWN_GRACE_S) + 5,
        access_log=False,  # every request is logged once, by our http.request line
        log_config=None,  # uvicorn's lines go to the handler configure_logging set up, rendered like ours
        **uvicorn_options(settings.server),
    )
    server = AnnouncingServer(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    return 0 if server.started else 3  # 3: uvicorn's own code for a failed start-up


def cmd_worker(args: argparse.Namespace) -> int:
    from mediaflow.worker import loop as worker

    argv = ["--burst"] if args.burst else []
    if args.concurrency:
        argv += ["--concurrency", str(args.concurrency)]
    return worker.main(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mediaflow", description="MediaFlow video processing service")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP API (with in-process workers on the embedded default)")
    serve.add_argument("--host", help="bind address (default API_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default API_PORT, 8000)")
    serve.add_argument("--workers", type=int, help="in-process workers (default API_WORKERS)")
    serve.set_defaults(handler=cmd_serve)

    work = commands.add_parser("worker", help="run a worker process")
    work.add_argument("--concurrency", type=int, help="jobs at a time (default WORKER_CONCURRENCY)")
    work.add_argument("--burst", action="store_true", help="exit once no queued job is left")
    work.set_defaults(handler=cmd_worker)

    add_client_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
