"""Issue 11: a seed user's .env (DB_BACKEND=mongodb|dynamodb, KAFKA_*, OUTPUT_*, AWS_*, and no
QUEUE_BACKEND/STORAGE_BACKEND) selects the seed's stack — Kafka and S3 — and the seed README's flow runs
on it: API + two `python worker.py`, an s3:// source, the result and log in S3."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from mediaflow.settings import Settings
from tests import media
from tests.helpers.s3 import bucket_keys, put_source
from tests.seed_stack import seed_environment, start_api, start_worker, wait_all_final, wait_until
from tests.servers.s3 import ACCESS_KEY, SECRET_KEY

pytestmark = pytest.mark.backend


@pytest.mark.parametrize(
    ("db_backend", "explicit", "queue", "storage"),
    [
        ("sqlite", {}, "embedded", "local"),
        ("mongodb", {}, "kafka", "s3"),
        ("dynamodb", {}, "kafka", "s3"),
        ("mongodb", {"QUEUE_BACKEND": "embedded"}, "embedded", "s3"),
        ("dynamodb", {"STORAGE_BACKEND": "local"}, "kafka", "local"),
    ],
)
def test_a_document_store_selects_the_seeds_stack_unless_told_otherwise(db_backend, explicit, queue, storage):
    settings = Settings(_env_file=None, DB_BACKEND=db_backend, **explicit)
    assert (queue, storage) == (settings.QUEUE_BACKEND, settings.STORAGE_BACKEND)
    for name, value in explicit.items():
        assert settings.backend_choices[name] == f"{value} (set explicitly)"
    if not explicit and db_backend != "sqlite":
        assert "DB_BACKEND=" + db_backend in settings.backend_choices["QUEUE_BACKEND"]


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory) -> Path:
    return media.make_clip(tmp_path_factory.mktemp("seed-clips"), "input.mp4", width=320, height=240, seconds=1)


@pytest.fixture(params=["mongodb", "dynamodb"])
def seed_env(request, kafka_server, s3_server) -> dict[str, str]:
    """Exactly the seed README's variables, plus the endpoint URLs of the test servers."""
    name = f"seed{uuid.uuid4().hex[:10]}"
    env = {
        "DB_BACKEND": request.param,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_server.bootstrap,
        "KAFKA_TOPIC": name,
        "KAFKA_CONSUMER_GROUP": name,
        "OUTPUT_BUCKET": name,
        "OUTPUT_PREFIX": "processed",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "S3_ENDPOINT_URL": s3_server.endpoint,
    }
    if request.param == "mongodb":
        env |= {"MONGO_URL": request.getfixturevalue("mongo_server").url, "DB_NAME": name}
    else:
        env |= {"DYNAMODB_ENDPOINT_URL": request.getfixturevalue("dynamodb_server").url, "DB_NAME": name}
    return seed_environment(**env)


async def test_the_seed_env_runs_the_seed_readme_flow(seed_env, small_clip, tmp_path):
    settings = Settings(_env_file=None, **{k: v for k, v in seed_env.items() if k in Settings.model_fields})
    source = await put_source(settings, f"videos-{uuid.uuid4().hex[:8]}", "videos/input.mp4", small_clip)
    api, url = start_api(seed_env, tmp_path)
    workers = [start_worker(seed_env, tmp_path) for _ in range(2)]
    try:
        ready = httpx.get(f"{url}/readyz").json()
        assert ready["backends"] == {f"store:{seed_env['DB_BACKEND']}": "ok", "queue:kafka": "ok", "storage:s3": "ok"}
        assert "selects the seed's stack" in ready["details"]["queue_backend"], ready
        assert "selects the seed's stack" in ready["details"]["storage_backend"], ready
        chosen = next(e for e in api.events() if e["event"] == "backends.chosen")
        assert chosen["queue"].startswith("kafka") and chosen["storage"].startswith("s3"), chosen

        # The README's curl flow: submit, follow, download; list.
        response = httpx.post(
            f"{url}/process", json={"source": source, "method_name": "compress", "output_format": "mp4"}
        )
        assert response.status_code == 200 and response.json()["status"] == "queued", response.text
        job_id = response.json()["job_id"]
        status = wait_all_final(url, [job_id], timeout=90)[job_id]
        assert status["status"] == "completed", status
        prefix = f"processed/{job_id}/"
        assert status["output_path"] == f"s3://{seed_env['OUTPUT_BUCKET']}/{prefix}input_compress.mp4"
        assert await bucket_keys(settings, prefix) == [prefix + "ffmpeg.log", prefix + "input_compress.mp4"]
        download = httpx.get(f"{url}/download/{job_id}")
        assert download.status_code == 200 and download.content[4:8] == b"ftyp"
        listed = httpx.get(f"{url}/process", params={"limit": 10, "skip": 0}).json()
        assert [job["job_id"] for job in listed["jobs"]] == [job_id]
        wait_until(
            lambda: all(any(e["event"] == "backends.chosen" for e in w.events()) for w in workers),
            10,
            "both workers to log their backends",
        )
        for worker in workers:
            chosen = next(e for e in worker.events() if e["event"] == "backends.chosen")
            assert chosen["queue"].startswith("kafka") and chosen["storage"].startswith("s3"), chosen
    finally:
        for worker in workers:
            worker.stop()
        api.stop()
