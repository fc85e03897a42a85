"""The README's production shape, end to end against real servers: the API (uvicorn) on MongoDB or
DynamoDB + Kafka + S3, and two `python worker.py` processes in one consumer group.

Also the crash test of issue 5 on this stack: a worker SIGKILLed mid-encode, the job completes on the
other worker with exactly one final output."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
import uuid
from collections import Counter
from contextlib import asynccontextmanager
from pathlib import Path

import aioboto3
import httpx
import pytest

from mediaflow.aws import client_kwargs
from mediaflow.jobs.model import Phase
from mediaflow.jobs.progress import PHASE_SPAN
from mediaflow.media.probe import probe
from tests import media
from tests.apptools import ApiServer, make_settings, start_worker, wait_for_final, worker_events

pytestmark = pytest.mark.backend

ENCODING_START = PHASE_SPAN[Phase.ENCODING][0]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("distributed-clips")
    return {
        "small": media.make_clip(directory, "small.mp4", width=320, height=240, seconds=2),
        "long": media.make_clip(directory, "long.mp4", width=1280, height=720, seconds=20),
    }


@pytest.fixture(params=["mongodb", "dynamodb"])
def stack(request, tmp_path, kafka_settings, s3_settings):
    store = request.getfixturevalue("mongo_settings" if request.param == "mongodb" else "dynamo_settings")
    # One set of AWS credentials for S3 and DynamoDB (both emulators accept the S3 server's key).
    overrides = {**store, **kafka_settings, **s3_settings, "QUEUED_SWEEP_AFTER_S": 5, "LEASE_SECONDS": 3}
    return make_settings(tmp_path, **overrides)


async def put_source(settings, bucket: str, key: str, path: Path) -> str:
    async with aioboto3.Session().client("s3", **client_kwargs(settings, "s3")) as s3:
        await s3.create_bucket(Bucket=bucket)
        await s3.upload_file(str(path), bucket, key)
    return f"s3://{bucket}/{key}"


@asynccontextmanager
async def finished_job(settings, cwd: Path, source: str, outputs: list[dict], timeout: float = 180):
    """The API (uvicorn) and one `python worker.py` on `settings`: POST /jobs with `outputs`, wait until
    the job is final; yields (the server's URL, the job) while both still run, to fetch its files."""
    with ApiServer(settings, cwd) as server:
        worker = start_worker(settings, cwd)
        try:
            created = httpx.post(f"{server.url}/jobs", json={"source": source, "outputs": outputs})
            assert created.status_code == 201, created.text
            async with httpx.AsyncClient(base_url=server.url) as client:
                job = await wait_for_final(client, created.json()["job_id"], timeout, view="/jobs/{}")
            yield server.url, job
        finally:
            stop([worker])


async def bucket_keys(settings, prefix: str) -> list[str]:
    async with aioboto3.Session().client("s3", **client_kwargs(settings, "s3")) as s3:
        response = await s3.list_objects_v2(Bucket=settings.OUTPUT_BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in response.get("Contents", []))


def wait_all_final(server: ApiServer, job_ids: list[str], timeout: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = {job_id: httpx.get(f"{server.url}/status/{job_id}").json() for job_id in job_ids}
        if all(s["status"] in ("completed", "failed", "canceled") for s in statuses.values()):
            return statuses
        time.sleep(0.3)
    raise AssertionError(f"not all jobs finished in {timeout} s: {Counter(s['status'] for s in statuses.values())}")


def stop(workers) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        worker.wait(timeout=60)


async def test_readme_flow_on_kafka_s3_and_a_document_store(stack, clips, tmp_path):
    source = await put_source(stack, f"sources-{uuid.uuid4().hex[:12]}", "videos/small.mp4", clips["small"])
    with ApiServer(stack, tmp_path) as server:
        ready = httpx.get(f"{server.url}/readyz").json()
        assert ready["status"] == "ready" and set(ready["backends"].values()) == {"ok"}, ready
        workers = [start_worker(stack, tmp_path) for _ in range(2)]
        try:
            await asyncio.sleep(4)  # both consumers join the group (session timeout 2 s)
            job_ids = []
            for _ in range(10):
                response = httpx.post(f"{server.url}/process", json={"source": source, "method_name": "compress"})
                assert response.status_code == 200 and response.json()["status"] == "queued", response.text
                job_ids.append(response.json()["job_id"])
            statuses = wait_all_final(server, job_ids, timeout=180)
            assert {s["status"] for s in statuses.values()} == {"completed"}, statuses

            listed = httpx.get(f"{server.url}/process", params={"limit": 10}).json()
            assert listed["count"] == 10 and [job["job_id"] for job in listed["jobs"]] == job_ids[::-1]

            for job_id, status in statuses.items():
                prefix = f"{stack.OUTPUT_PREFIX}/{job_id}/"
                assert status["output_path"] == f"s3://{stack.OUTPUT_BUCKET}/{prefix}small_compress.mp4"
                assert status["log_path"] == f"s3://{stack.OUTPUT_BUCKET}/{prefix}ffmpeg.log"
                assert await bucket_keys(stack, prefix) == [prefix + "ffmpeg.log", prefix + "small_compress.mp4"]
            download = httpx.get(f"{server.url}/download/{job_ids[0]}")
            assert download.status_code == 200 and download.headers["content-type"] == "video/mp4"
            (tmp_path / "out.mp4").write_bytes(download.content)
            assert (await probe(tmp_path / "out.mp4", stack)).video.codec == "h264"
            assert httpx.get(f"{server.url}/jobs/{job_ids[0]}/log").text.strip()
        finally:
            stop(workers)
        completed_by = [
            [e["job_id"] for e in worker_events(worker) if e["event"] == "job.completed"] for worker in workers
        ]
        assert sorted(sum(completed_by, [])) == sorted(job_ids), completed_by  # each exactly once
        assert all(completed_by), f"work was not spread over both workers: {completed_by}"


async def test_a_worker_killed_mid_encode_on_kafka_and_a_document_store(stack, clips, tmp_path):
    shutil.copyfile(clips["long"], tmp_path / "media" / "long.mp4")
    with ApiServer(stack, tmp_path) as server:
        workers = [start_worker(stack, tmp_path) for _ in range(2)]
        try:
            await asyncio.sleep(4)
            job_id = httpx.post(f"{server.url}/process", json={"source": "long.mp4", "method_name": "compress"}).json()[
                "job_id"
            ]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status = httpx.get(f"{server.url}/status/{job_id}").json()
                if status["phase"] == "encoding" and status["progress"] > ENCODING_START + 1:
                    break
                time.sleep(0.1)
            else:
                raise AssertionError(f"job never reached encoding: {status}")
            victim = next(w for w in workers if any(e["event"] == "job.claimed" for e in worker_events(w)))
            survivor = next(w for w in workers if w is not victim)
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            killed_at = time.monotonic()
            final = wait_all_final(server, [job_id], timeout=120)[job_id]
            assert final["status"] == "completed" and final["attempts"] == 2, final
            # lease 3 s + reaper + rebalance + a full re-encode of 20 s of 720p on two cores
            assert time.monotonic() - killed_at < 90
            prefix = f"{stack.OUTPUT_PREFIX}/{job_id}/"
            assert await bucket_keys(stack, prefix) == [prefix + "ffmpeg.log", prefix + "long_compress.mp4"]
            assert [e["job_id"] for e in worker_events(survivor) if e["event"] == "job.completed"] == [job_id]
        finally:
            stop(workers)


async def test_download_redirects_to_a_presigned_url_when_configured(tmp_path, s3_settings, clips):
    """With S3_PRESIGNED_DOWNLOADS the API answers 307 to a time-limited S3 URL instead of
    streaming the bytes itself."""
    from mediaflow.jobs.model import Job, JobStatus, Method
    from mediaflow.storage import open_storage
    from mediaflow.store import open_store
    from tests.apptools import running_app

    settings = make_settings(tmp_path, S3_PRESIGNED_DOWNLOADS=True, **s3_settings)
    storage = await open_storage(settings)
    store = await open_store(settings)
    try:
        job = Job(method_name=Method.COMPRESS, source="small.mp4", output_format="mp4", status=JobStatus.COMPLETED)
        key = f"{settings.OUTPUT_PREFIX}/{job.job_id}/small_compress.mp4"
        job.output_path = await storage.put_file(key, clips["small"], "video/mp4")
        await store.create(job)
    finally:
        await store.close()
        await storage.close()
    async with running_app(settings) as client:
        response = await client.get(f"/download/{job.job_id}")
    assert response.status_code == 307
    location = response.headers["location"]
    assert location.startswith(s3_settings["S3_ENDPOINT_URL"]) and "Signature" in location
    fetched = httpx.get(location)
    assert fetched.status_code == 200 and fetched.content == clips["small"].read_bytes()
    assert "small_compress.mp4" in fetched.headers["content-disposition"]
