"""Start and stop the real servers the test suite runs against (Kafka, MongoDB, DynamoDB, S3).

Every server is started by the suite from packages installed by the README's test command, bound to
127.0.0.1 on free ports, and stopped by its PID (SIGTERM, then SIGKILL). A server that cannot start
skips its tests on a developer machine and fails them in CI (CI=true), where nothing may be skipped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def server_unavailable(name: str, reason: str) -> None:
    """Skip (developer machine) or fail (CI) the requesting test: a backend is never skipped in CI."""
    message = f"{name} could not be started: {reason}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port(*, spare_offsets: Sequence[int] = ()) -> int:
    """A free TCP port on 127.0.0.1; with spare_offsets, one whose port+offset ports are free too
    (SeaweedFS opens a gRPC port at +10000 for each HTTP port)."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + max(spare_offsets, default=0) < 65536 and all(port_is_free(port + o) for o in spare_offsets):
            return port
    raise RuntimeError("no free port found")


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class ServerProcess:
    """A server started by the suite. `log_path` keeps its output, shown when it fails to start."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    process: subprocess.Popen | None = field(default=None, init=False)

    def start(self, ready: Callable[[], bool], timeout: float = 30.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(self.env or {})},
                cwd=self.cwd,
                start_new_session=True,  # our own group: stopping it takes its children too
            )
        except OSError as exc:
            log.close()
            server_unavailable(self.name, f"{self.argv[0]}: {exc}")
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._fail(f"exited with code {self.process.returncode}")
            try:
                if ready():
                    return
            except Exception:  # not ready yet; the readiness probes raise while the server starts
                pass
            time.sleep(0.05)
        self._fail(f"not ready after {timeout:.0f} s")

    def _fail(self, reason: str) -> None:
        tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
        self.stop()
        server_unavailable(self.name, f"{reason}; log {self.log_path}:\n{tail}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        except ProcessLookupError:
            pass

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None
