"""A configured backend that cannot be reached stops the API and workers at start-up, quickly and with
a message that says what to check (no traceback for the user to decode)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from mediaflow.queue import QueueUnavailableError
from mediaflow.storage import StorageUnavailableError
from mediaflow.store import StoreUnavailableError
from tests.apptools import REPO, make_settings, running_app, settings_env
from tests.servers.process import free_port

DEAD = f"127.0.0.1:{free_port()}"  # nothing listens here

CASES = {
    "mongodb": ({"DB_BACKEND": "mongodb", "MONGO_URL": f"mongodb://{DEAD}/"}, StoreUnavailableError, "MONGO_URL"),
    "dynamodb": (
        {
            "DB_BACKEND": "dynamodb",
            "DYNAMODB_ENDPOINT_URL": f"http://{DEAD}",
            "AWS_ACCESS_KEY": "k1",
            "AWS_SECRET_ACCESS_KEY": "s1",
        },
        StoreUnavailableError,
        "DynamoDB",
    ),
    "kafka": (
        {"QUEUE_BACKEND": "kafka", "KAFKA_BOOTSTRAP_SERVERS": DEAD},
        QueueUnavailableError,
        "KAFKA_BOOTSTRAP_SERVERS",
    ),
    "s3": (
        {
            "STORAGE_BACKEND": "s3",
            "S3_ENDPOINT_URL": f"http://{DEAD}",
            "AWS_ACCESS_KEY": "k1",
            "AWS_SECRET_ACCESS_KEY": "s1",
        },
        StorageUnavailableError,
        "S3",
    ),
}


@pytest.mark.parametrize("backend", CASES)
async def test_the_api_refuses_to_start(tmp_path, backend):
    overrides, error, hint = CASES[backend]
    started = time.monotonic()
    with pytest.raises(error, match=hint):
        async with running_app(make_settings(tmp_path, **overrides)):
            pass
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("backend", CASES)
def test_a_worker_refuses_to_start(tmp_path, backend):
    overrides, _, hint = CASES[backend]
    env = settings_env(make_settings(tmp_path, **overrides))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(REPO / "worker.py")], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert time.monotonic() - started < 15
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("mediaflow worker: cannot start:") and hint in last_line, result.stderr
    assert "Traceback" not in result.stderr
