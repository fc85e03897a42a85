"""Serving the API with uvicorn, hardened against slow and idle clients.

uvicorn (h11) gives a connection that never finishes its request headers no deadline, and counts it
against `limit_concurrency` like a busy one: 1,050 such connections took a server with a file limit
of 1024 down (every new accept failed with EMFILE, and asyncio logged each failure: 81k lines in
10 s). `GuardedH11Protocol` adds what is missing:

- a header deadline: a connection whose request headers are not complete API_HEADER_TIMEOUT_S after
  it opened (or after its previous response) is closed;
- a connection cap below the file limit (API_MAX_CONNECTIONS, by default the soft RLIMIT_NOFILE less
  a reserve for the process's own files): at the cap, the connection that has waited longest for
  its headers is closed to make room, so a client that sends a request at once is still served;
- asyncio's "socket.accept() out of system resource" reports, should they happen anyway, logged
  once per interval with a count (`throttle_accept_errors`).

The request body's idle timeout is in request_limits.py (it concerns the ASGI app, not the socket).
`mediaflow serve` uses all of this; with plain uvicorn pass `--http mediaflow.api.server:GuardedH11Protocol`.
A reverse proxy in front (docs/security.md, "Exposing MediaFlow to the internet") remains the first line.
"""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from mediaflow.logs import get_logger
from mediaflow.settings import Settings
from mediaflow.settings_groups import ServerSettings

FD_RESERVE = 256  # files the process needs besides client sockets: store, logs, storage, ffmpeg pipes
ACCEPT_ERROR_LOG_INTERVAL_S = 10.0
log = get_logger("server")


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float
    max_connections: int

    @classmethod
    def from_settings(cls, server: ServerSettings) -> ConnectionLimits:
        return cls(
            header_timeout_s=server.header_timeout_s,
            max_connections=server.max_connections or default_max_connections(),
        )


def default_max_connections() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10_000
    return max(soft - FD_RESERVE, soft // 2, 16)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and a connection cap (see the module docstring)."""

    limits: ConnectionLimits | None = None  # set by `protocol_for`; else read from the environment once

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = type(self).limits
        if limits is None:
            limits = type(self).limits = ConnectionLimits.from_settings(Settings().server)
        self._limits = limits
        self._waiting_since: float | None = None  # when it started waiting for a request's headers
        self._deadline: asyncio.TimerHandle | None = None
        self._cycle_when_armed: object = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's own H11Protocol: asyncio hands a protocol a Transport
        super().connection_made(transport)
        self._arm()
        if len(self.connections) > self._limits.max_connections:
            self._make_room()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_since is not None and self.cycle is not self._cycle_when_armed:
            self._disarm()  # a request's headers were parsed: the app owns the pace from here

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's headers get the same deadline (after keep-alive's own)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._waiting_since = time.monotonic()
        self._cycle_when_armed = self.cycle
        self._deadline = self.loop.call_later(self._limits.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self._waiting_since = None

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if self._waiting_since is not None and not self.transport.is_closing():
            self.transport.close()  # no 408: a client this slow is not reading answers either

    def _make_room(self) -> None:
        """Close the connection that has waited longest for its headers (this one if none waits)."""
        waiting = [
            (c._waiting_since, c)
            for c in self.connections
            if isinstance(c, GuardedH11Protocol) and c._waiting_since is not None and not c.transport.is_closing()
        ]
        victim = min(waiting, key=lambda pair: pair[0])[1] if waiting else self
        victim.transport.close()


def protocol_for(server: ServerSettings) -> type[GuardedH11Protocol]:
    """A GuardedH11Protocol subclass bound to these settings (uvicorn instantiates the class itself)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": ConnectionLimits.from_settings(server)})


def uvicorn_options(server: ServerSettings) -> dict[str, Any]:
    """uvicorn.run / uvicorn.Config keyword arguments that bound what clients can hold."""
    return {
        "http": protocol_for(server),
        "timeout_keep_alive": server.keepalive_timeout_s,
        "h11_max_incomplete_event_size": 16 * 1024,  # request line + headers; uvicorn's default, made explicit
        "backlog": 512,
    }


def throttle_accept_errors(loop: asyncio.AbstractEventLoop, interval_s: float = ACCEPT_ERROR_LOG_INTERVAL_S) -> None:
    """Log asyncio's accept failures (EMFILE and kin) at most once per `interval_s`, with a count.
    CPython's accept loop reports one per pending connection and re-arms per failure, so a file
    limit reached under load otherwise writes thousands of tracebacks a second."""
    previous = loop.get_exception_handler()
    state = {"last": 0.0, "suppressed": 0}

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if "accept" not in str(context.get("message", "")):
            if previous is None:
                loop.default_exception_handler(context)
            else:
                previous(loop, context)
            return
        now = time.monotonic()
        if now - state["last"] < interval_s:
            state["suppressed"] += 1
            return
        log.error(
            "server.accept_failed",
            message=context.get("message"),
            error=str(context.get("exception")),
            more_since_last_report=state["suppressed"],
            hint="raise the file limit, lower API_MAX_CONNECTIONS, or put a reverse proxy in front",
        )
        state["last"], state["suppressed"] = now, 0

    loop.set_exception_handler(handler)
