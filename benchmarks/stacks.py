"""The shapes a benchmark runs on, and the run-wide context (`Bench`) every section receives.

- `embedded`: SQLite + embedded queue + local storage (the default a new user gets).
- `kafka`: Kafka (Tansu) + MongoDB (SecantusDB) + S3 (SeaweedFS), started once per run the way the
  test suite starts them (tests/servers/), bound to 127.0.0.1, stopped at the end.
Each call of `Bench.settings` gives fresh names (database, topic, group, bucket), so sections never
see each other's jobs.
"""

from __future__ import annotations

import argparse
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mediaflow.settings import Settings
from tests.apptools import make_settings

STACKS = {"embedded": "embedded (SQLite, local)", "kafka": "Kafka+MongoDB+S3"}


@dataclass
class Servers:
    kafka_bootstrap: str
    mongo_url: str
    s3: dict  # settings overrides for the S3 server (endpoint, credentials), bucket added per use


@dataclass
class Bench:
    args: argparse.Namespace
    workdir: Path
    cleanup: ExitStack
    _servers: Servers | None = field(default=None, init=False)

    @property
    def stacks(self) -> list[str]:
        return self.args.stacks

    @property
    def quick(self) -> bool:
        return self.args.quick

    def servers(self) -> Servers:
        if self._servers is None:
            from tests.servers.kafka import start_tansu
            from tests.servers.mongo import start_secantus
            from tests.servers.s3 import s3_overrides, start_seaweedfs

            base = self.workdir / "servers"
            kafka = start_tansu(base)
            self.cleanup.callback(kafka.process.stop)
            mongo = start_secantus(base / "mongo")
            self.cleanup.callback(mongo.process.stop)
            s3 = start_seaweedfs(base / "s3")
            self.cleanup.callback(s3.process.stop)
            self._servers = Servers(kafka.bootstrap, mongo.url, s3_overrides(s3, "unused"))
        return self._servers

    def settings(self, stack: str, **overrides: Any) -> Settings:
        """Settings for one measurement on `stack`, with a directory and names of its own."""
        name = f"bench{uuid.uuid4().hex[:10]}"
        base = self.workdir / name
        values: dict[str, Any] = {
            "LOG_LEVEL": "WARNING",
            "POLL_INTERVAL_S": 1.0,
            "PROGRESS_WRITE_INTERVAL_S": 1.0,
            "LEASE_SECONDS": 30,
        }
        if stack == "kafka":
            servers = self.servers()
            values |= servers.s3 | {
                "DB_BACKEND": "mongodb",
                "MONGO_URL": servers.mongo_url,
                "DB_NAME": name,
                "QUEUE_BACKEND": "kafka",
                "KAFKA_BOOTSTRAP_SERVERS": servers.kafka_bootstrap,
                "KAFKA_TOPIC": name,
                "KAFKA_CONSUMER_GROUP": name,
                "OUTPUT_BUCKET": name,
                # Joins and leaves in about a second on one machine (see infra.md); not a speed knob.
                "KAFKA_SESSION_TIMEOUT_MS": 2000,
                "KAFKA_HEARTBEAT_INTERVAL_MS": 300,
            }
        elif stack != "embedded":
            raise ValueError(f"unknown stack {stack!r}")
        return make_settings(base, **(values | overrides))
