"""One API key cannot reach another's files, nor the server's (issue 12, items 1, 2 and 9), against a
real S3 server (SeaweedFS) with API keys alice and bob and an in-process worker.

- `s3://` sources: with API keys, none by default; never the output bucket's uploads or outputs
  (also not through key spellings an S3 server folds together); one error text for "not allowed",
  "no such key" and "no such bucket", at submission and in the job's error.
- `upload://` ids are tied to the key that uploaded: another key's id answers like an unknown id.
- A request S3 refuses as such (400 InvalidRequest) fails at once instead of being retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid

import aioboto3
import pytest

from mediaflow.aws import client_kwargs
from mediaflow.settings import Settings
from mediaflow.storage import PermanentStorageError
from mediaflow.storage.s3 import S3Storage
from mediaflow.worker.run_context import with_storage_retries
from mediaflow.worker.settle import PERMANENT_ERRORS
from tests import media
from tests.apptools import make_settings, running_app, wait_for_final

pytestmark = pytest.mark.backend

ALICE = {"X-API-Key": "alice-key-123"}
BOB = {"X-API-Key": "bob-key-4567"}
KEYS = "alice:alice-key-123,bob:bob-key-4567"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return media.make_clip(tmp_path_factory.mktemp("tenancy"), "clip.mp4", width=160, height=120, seconds=1)


async def put_object(settings: Settings, bucket: str, key: str, path) -> str:
    async with aioboto3.Session().client("s3", **client_kwargs(settings, "s3")) as s3:
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            await s3.create_bucket(Bucket=bucket)
        await s3.upload_file(str(path), bucket, key)
    return f"s3://{bucket}/{key}"


def without_uri(detail: str, *uris: str) -> str:
    for uri in uris:
        detail = detail.replace(uri, "<uri>")
    return detail


async def upload(api, clip, headers) -> str:
    with open(clip, "rb") as handle:
        response = await api.post("/upload", files={"file": ("clip.mp4", handle, "video/mp4")}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["source"]


async def test_one_key_reaches_neither_anothers_files_nor_the_servers(tmp_path, s3_settings, clip):
    settings = make_settings(tmp_path, API_KEYS=KEYS, **s3_settings)
    secrets = f"corp-secrets-{uuid.uuid4().hex[:8]}"
    secret_source = await put_object(settings, secrets, "hr/interview.mp4", clip)
    async with running_app(settings, api_workers=1) as api:
        alices = await upload(api, clip, ALICE)
        job = (await api.post("/process", json={"source": alices, "method_name": "compress"}, headers=ALICE)).json()
        done = await _final(api, job["job_id"], ALICE)
        assert done["status"] == "completed", done

        # Bob with alice's upload id: the same answer as an id that never existed.
        stolen = await api.post("/process", json={"source": alices, "method_name": "compress"}, headers=BOB)
        unknown = f"upload://{uuid.uuid4().hex}/clip.mp4"
        never = await api.post("/process", json={"source": unknown, "method_name": "compress"}, headers=BOB)
        assert stolen.status_code == never.status_code == 422
        assert without_uri(stolen.json()["detail"], alices) == without_uri(never.json()["detail"], unknown)

        # Bob through s3://: alice's upload and output in the output bucket, under every spelling
        # SeaweedFS folds into the same object, and a bucket the server's credentials can read.
        bucket = settings.OUTPUT_BUCKET
        upload_key = (await _keys(settings, bucket, "uploads/"))[0]
        output_key = done["output_path"].removeprefix(f"s3://{bucket}/")
        attempts = [
            secret_source,
            f"s3://{bucket}/{upload_key}",
            f"s3://{bucket}/{output_key}",
            f"s3://{bucket}//{upload_key}",
            f"s3://{bucket}/{upload_key.replace('/', '//', 1)}",
            f"s3://{bucket}/{upload_key.replace('/', chr(92), 1)}",
            f"s3://{secrets}/hr/missing.mp4",
            f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/x.mp4",
        ]
        details = set()
        for uri in attempts:
            response = await api.post("/process", json={"source": uri, "method_name": "compress"}, headers=BOB)
            assert response.status_code == 422, (uri, response.text)
            details.add(without_uri(response.json()["detail"], uri))
        assert len(details) == 1, f"one answer for every refused s3:// source: {details}"
        assert "POST /upload" in details.pop()
        listed = (await api.get("/process", headers=BOB)).json()
        assert listed["count"] == 0, "nothing of bob's was queued"


async def _final(api, job_id: str, headers: dict) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = (await api.get(f"/status/{job_id}", headers=headers)).json()
        if body["status"] in ("completed", "failed", "canceled"):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {body}")


async def _keys(settings: Settings, bucket: str, prefix: str) -> list[str]:
    async with aioboto3.Session().client("s3", **client_kwargs(settings, "s3")) as s3:
        response = await s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for item in response.get("Contents", []))


async def test_without_api_keys_any_bucket_but_never_the_servers_own_files(tmp_path, s3_settings, clip):
    """The single-tenant default reads any bucket, except the output bucket's uploads and outputs; a
    missing key and a missing bucket fail the job with the same words (no existence oracle)."""
    settings = make_settings(tmp_path, **s3_settings)
    videos = f"videos-{uuid.uuid4().hex[:8]}"
    source = await put_object(settings, videos, "in.mp4", clip)
    async with running_app(settings, api_workers=1) as api:
        done = await wait_for_final(
            api, (await api.post("/process", json={"source": source, "method_name": "compress"})).json()["job_id"]
        )
        assert done["status"] == "completed", done
        own = await api.post("/process", json={"source": done["output_path"], "method_name": "compress"})
        assert own.status_code == 422 and "not one this server may read" in own.json()["detail"]

        missing_key, missing_bucket = f"s3://{videos}/nope.mp4", f"s3://nobucket-{uuid.uuid4().hex[:8]}/nope.mp4"
        errors = []
        for uri in (missing_key, missing_bucket):
            job = (await api.post("/process", json={"source": uri, "method_name": "compress"})).json()
            failed = await wait_for_final(api, job["job_id"])
            assert failed["status"] == "failed" and failed["attempts"] == 1, failed
            errors.append(without_uri(failed["error"], uri))
        assert errors[0] == errors[1], errors
        assert not re.search(r"NoSuch|does not exist|404", errors[0]), errors[0]


async def test_a_listed_prefix_is_the_only_place_sources_come_from(tmp_path, s3_settings, clip):
    bucket = f"media-{uuid.uuid4().hex[:8]}"
    settings = make_settings(tmp_path, API_KEYS=KEYS, S3_SOURCE_BUCKETS=f"{bucket}/public", **s3_settings)
    allowed = await put_object(settings, bucket, "public/in.mp4", clip)
    elsewhere = await put_object(settings, bucket, "private/in.mp4", clip)
    lookalike = await put_object(settings, bucket, "public-not/in.mp4", clip)
    async with running_app(settings) as api:
        ok = await api.post("/process", json={"source": allowed, "method_name": "compress"}, headers=BOB)
        assert ok.status_code == 200, ok.text
        for uri in (elsewhere, lookalike):
            refused = await api.post("/process", json={"source": uri, "method_name": "compress"}, headers=BOB)
            assert refused.status_code == 422 and f"s3://{bucket}/public/" in refused.json()["detail"]


async def test_a_request_s3_refuses_is_permanent_not_retried(tmp_path, s3_settings, clip):
    """SeaweedFS answers 400 InvalidRequest for a key with a "." segment: asking again cannot help."""
    settings = Settings(_env_file=None, **s3_settings, STORAGE_RETRIES=3)
    bucket = f"src-{uuid.uuid4().hex[:8]}"
    await put_object(settings, bucket, "in.mp4", clip)
    storage = await S3Storage.open(settings)
    try:
        calls = 0

        async def fetch():
            nonlocal calls
            calls += 1
            await storage.fetch_uri(f"s3://{bucket}/./in.mp4", tmp_path / "x.mp4")

        with pytest.raises(PermanentStorageError) as caught:
            await with_storage_retries(settings.STORAGE_RETRIES, fetch, "fetch source")
        assert calls == 1, "not retried"
        assert isinstance(caught.value, PERMANENT_ERRORS), "the job fails at once instead of being released"
        assert "InvalidRequest" in str(caught.value)
    finally:
        await storage.close()
