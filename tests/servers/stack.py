"""Kafka (Tansu) + a MongoDB server (SecantusDB) together, for the scripts that run the distributed
shape outside pytest (scripts/bench.py, scripts/chaos.py)."""

from __future__ import annotations

from pathlib import Path

from tests.servers.kafka import start_tansu
from tests.servers.mongo import start_secantus


def start_kafka_and_mongo(workdir: Path, name: str) -> tuple[dict, list]:
    """Start both servers; returns the settings overrides that point at them, and their processes
    (the caller stops them). `name` is used for the database, topic and consumer group."""
    kafka = start_tansu(workdir)
    mongo = start_secantus(workdir / "mongo")
    overrides = {
        "DB_BACKEND": "mongodb",
        "MONGO_URL": mongo.url,
        "DB_NAME": name,
        "QUEUE_BACKEND": "kafka",
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "KAFKA_TOPIC": name,
        "KAFKA_CONSUMER_GROUP": name,
        "STORAGE_BACKEND": "local",  # sources and results on this machine (a document store alone would select S3)
    }
    return overrides, [kafka.process, mongo.process]
