"""A real MongoDB wire-protocol server for the tests: SecantusDB from the `secantusdb` package.

(A real mongod cannot be installed from the package registries; see infra.md §4.) One in-memory
server per test session; each test gets its own database through `mongo_settings`.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from pymongo import MongoClient

from tests.servers.process import ServerProcess, free_port, server_unavailable


@dataclass(frozen=True)
class MongoServer:
    url: str
    process: ServerProcess


def _ping(url: str) -> bool:
    with MongoClient(url, serverSelectionTimeoutMS=500, connectTimeoutMS=500) as client:
        client.admin.command("ping")
    return True


def start_secantus(workdir: Path, *, on_disk: bool = False) -> MongoServer:
    """Start a server (also used by scripts/chaos.py and scripts/bench.py): in memory, or with its
    data in `workdir`/data, synced on every commit, so a kill -9 and a restart (`process.start`
    again, same port) find every acknowledged write (infra.md, "Restarts with data")."""
    # The console script sits next to the interpreter (the venv's bin/); don't resolve symlinks,
    # that would leave the venv.
    executable = Path(sys.executable).parent / "secantusd-py"
    if not executable.exists():
        server_unavailable("SecantusDB", f"{executable} not found; run: pip install secantusdb==0.7.0b3")
    workdir.mkdir(parents=True, exist_ok=True)
    # An explicit (empty) config stops it from picking up ./secantusd.toml or ~/.secantus/ settings.
    config = workdir / "secantusd.toml"
    config.write_text("")
    port = free_port()
    url = f"mongodb://127.0.0.1:{port}/"
    server = ServerProcess(
        name="SecantusDB",
        argv=[
            str(executable),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(workdir / "data") if on_disk else ":memory:",
            "--config",
            str(config),
            *(["--sync-on-commit"] if on_disk else []),
        ],
        log_path=workdir / "secantusd.log",
        cwd=workdir,
    )
    server.start(ready=lambda: _ping(url))
    return MongoServer(url=url, process=server)


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory):
    server = start_secantus(tmp_path_factory.mktemp("secantus"))
    try:
        yield server
    finally:
        server.process.stop()


@pytest.fixture
def mongo_settings(mongo_server: MongoServer) -> dict[str, str]:
    """Settings overrides for a MongoDB job store in a database of its own."""
    return {
        "DB_BACKEND": "mongodb",
        "MONGO_URL": mongo_server.url,
        "DB_NAME": f"t_{uuid.uuid4().hex[:16]}",
        "MONGO_JOBS_COLLECTION": "jobs",
    }
