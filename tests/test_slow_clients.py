"""Slow clients cannot hold the server (issue 12, item 5), against a real `mediaflow serve` whose file
limit is lowered in the child: connections that never finish their headers, and bodies that stall."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.apptools import REPO, make_settings, settings_env
from tests.servers.process import free_port

FILE_LIMIT = 256
SLOW_CONNECTIONS = 300  # more than the server has files for


def _lower_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))


@pytest.fixture
def server(tmp_path):
    port = free_port()
    settings = make_settings(tmp_path, API_WORKERS=0, API_HEADER_TIMEOUT_S=3, API_BODY_IDLE_TIMEOUT_S=1)
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mediaflow", "serve", "--port", str(port)],
            cwd=REPO,
            env=settings_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_lower_file_limit,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _answers(url):
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()[-2000:]
            time.sleep(0.1)
        yield url, port, log_path
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _still_open(sock: socket.socket) -> bool:
    sock.settimeout(0.001)
    try:
        return sock.recv(1) != b""
    except TimeoutError:
        return True
    except OSError:
        return False


def test_connections_that_never_finish_their_headers_do_not_stop_the_server(server) -> None:
    url, port, log_path = server
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < SLOW_CONNECTIONS + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    lines_before = len(log_path.read_text().splitlines())
    slow = []
    try:
        for _ in range(SLOW_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never the blank line that ends the headers
            slow.append(sock)
        for _ in range(5):
            started = time.monotonic()
            assert _answers(url), "healthz did not answer while slow connections were open"
            assert time.monotonic() - started < 5  # (generous: the test machine is shared)
        assert sum(_still_open(sock) for sock in slow) < FILE_LIMIT  # the cap closed the oldest
        deadline = time.monotonic() + 10  # API_HEADER_TIMEOUT_S=3, plus room for a loaded machine
        while sum(_still_open(sock) for sock in slow) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert sum(_still_open(sock) for sock in slow) == 0
        assert _answers(url)
    finally:
        for sock in slow:
            sock.close()
    new_lines = log_path.read_text().splitlines()[lines_before:]
    assert len(new_lines) < 50, f"{len(new_lines)} log lines, e.g. {new_lines[:5]}"


def test_a_stalled_body_is_answered_408(server) -> None:
    _, port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /process HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"source": '
        )
        started = time.monotonic()
        answer = sock.recv(4096)
        while answer.startswith(b"HTTP/") and not answer.rstrip().endswith(b"}"):  # the body may come apart
            more = sock.recv(4096)
            if not more:
                break
            answer += more
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"API_BODY_IDLE_TIMEOUT_S" in answer
    assert time.monotonic() - started < 5


def test_accept_errors_are_logged_once_per_interval(caplog) -> None:
    import asyncio
    import logging

    from mediaflow.api.server import throttle_accept_errors

    loop = asyncio.new_event_loop()
    try:
        throttle_accept_errors(loop, interval_s=60)
        with caplog.at_level(logging.ERROR):
            for _ in range(1000):  # what CPython's accept loop reports when the file limit is reached
                loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": OSError(24, "Too many open files"),
                    }
                )
            loop.call_exception_handler({"message": "something else", "exception": ValueError("x")})
    finally:
        loop.close()
    accept_lines = [r for r in caplog.records if "socket.accept()" in r.getMessage()]
    assert len(accept_lines) == 1 and "Too many open files" in accept_lines[0].getMessage()
    assert any("something else" in r.getMessage() for r in caplog.records)  # other errors pass through
