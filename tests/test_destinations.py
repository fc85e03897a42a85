"""Delivery to the user's own bucket (issue 25): `destination` on POST /process and POST /jobs, against
a real S3 server (SeaweedFS) with an in-process worker. The job's files land in a second bucket under
`<prefix><job_id>/`, with their content types; /status, GET /jobs/{id} and the final webhook name the
delivered locations; downloads keep working; refused buckets and prefixes are 422s naming the setting."""

from __future__ import annotations

import contextlib
import json
import uuid

import aioboto3
import pytest

from mediaflow.aws import client_kwargs
from mediaflow.jobs.events import EventType, JobEvent
from mediaflow.settings import Settings
from mediaflow.webhooks.payload import event_payload
from tests import media
from tests.apptools import make_settings, running_app, wait_for_final

pytestmark = pytest.mark.backend


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return media.make_clip(tmp_path_factory.mktemp("destinations"), "clip.mp4", width=160, height=120, seconds=1)


async def make_bucket(settings: Settings, bucket: str) -> None:
    async with aioboto3.Session().client("s3", **client_kwargs(settings, "s3")) as s3:
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            await s3.create_bucket(Bucket=bucket)


async def objects(settings: Settings, bucket: str, prefix: str = "") -> dict[str, str]:
    """key -> content type of every object under `prefix`."""
    found = {}
    async with aioboto3.Session().client("s3", **client_kwargs(settings, "s3")) as s3:
        listing = await s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        for item in listing.get("Contents", []):
            head = await s3.head_object(Bucket=bucket, Key=item["Key"])
            found[item["Key"]] = head["ContentType"]
    return found


async def upload(api, clip) -> str:
    with open(clip, "rb") as handle:
        response = await api.post("/upload", files={"file": ("clip.mp4", handle, "video/mp4")})
    assert response.status_code == 201, response.text
    return response.json()["source"]


@pytest.fixture
async def delivery(tmp_path, s3_settings):
    """(settings, destination bucket): deliveries allowed below `<bucket>/deliveries/`."""
    bucket = f"customer-{uuid.uuid4().hex[:12]}"
    settings = make_settings(tmp_path, S3_DESTINATION_BUCKETS=f"{bucket}/deliveries", **s3_settings)
    await make_bucket(settings, bucket)
    return settings, bucket


async def test_a_process_job_is_delivered_to_the_users_bucket(delivery, clip):
    settings, bucket = delivery
    finals: list[JobEvent] = []
    async with running_app(settings, api_workers=1) as api:
        api.app.state.events.subscribe(lambda e: finals.append(e) if e.type is EventType.COMPLETED else None)
        source = await upload(api, clip)
        destination = f"s3://{bucket}/deliveries/run-1/"
        submitted = await api.post(
            "/process", json={"source": source, "method_name": "compress", "destination": destination}
        )
        assert submitted.status_code == 200, submitted.text
        job_id = submitted.json()["job_id"]
        done = await wait_for_final(api, job_id)
        assert done["status"] == "completed", done
        folder = f"deliveries/run-1/{job_id}/"
        assert done["output_path"] == f"s3://{bucket}/{folder}clip_compress.mp4"
        assert done["log_path"] == f"s3://{bucket}/{folder}ffmpeg.log"
        assert done["destination"] == destination

        delivered = await objects(settings, bucket, folder)
        assert delivered == {f"{folder}clip_compress.mp4": "video/mp4", f"{folder}ffmpeg.log": "text/plain"}
        assert await objects(settings, settings.OUTPUT_BUCKET, f"processed/{job_id}/") == {}

        download = await api.get(f"/download/{job_id}")
        assert download.status_code == 200 and download.headers["content-type"] == "video/mp4"
        assert len(download.content) > 1000
        log = await api.get(f"/jobs/{job_id}/log")
        assert log.status_code == 200 and "Input #0" in log.text

        # Removing the job removes its record; the delivered files are the user's and stay.
        assert (await api.delete(f"/jobs/{job_id}")).status_code == 204
        assert (await api.get(f"/status/{job_id}")).status_code == 404
        assert set(await objects(settings, bucket, folder)) == set(delivered)

    # The final webhook carries the delivered location.
    payload = json.loads(event_payload(finals[-1], "msg_1"))
    assert payload["data"]["output_path"] == done["output_path"]
    assert payload["data"]["destination"] == destination


async def test_a_jobs_outputs_are_delivered_and_listed_with_their_locations(delivery, clip):
    settings, bucket = delivery
    async with running_app(settings, api_workers=1) as api:
        source = await upload(api, clip)
        destination = f"s3://{bucket}/deliveries/"
        outputs = [
            {"name": "web", "type": "video", "format": "mp4", "video": {"height": 96}},
            {"name": "poster", "type": "thumbnails", "count": 1, "width": 80},
        ]
        submitted = await api.post("/jobs", json={"source": source, "outputs": outputs, "destination": destination})
        assert submitted.status_code == 201, submitted.text
        job_id = submitted.json()["job_id"]
        done = await wait_for_final(api, job_id, view="/jobs/{}")
        assert done["status"] == "completed", done

        files = [f for output in done["outputs"] for f in output["files"]]
        assert files and all(f["location"] == f"s3://{bucket}/deliveries/{job_id}/{f['path']}" for f in files)
        delivered = await objects(settings, bucket, f"deliveries/{job_id}/")
        for f in files:
            assert delivered[f"deliveries/{job_id}/{f['path']}"] == f["mime_type"]
        assert f"deliveries/{job_id}/files.json" in delivered
        assert not [k for k in delivered if "/.tasks/" in k]  # scratch never reaches the user's bucket

        listing = (await api.get(f"/jobs/{job_id}/files")).json()["files"]
        assert {f["location"] for f in listing} >= {f["location"] for f in files}
        served = await api.get(files[0]["url"])
        assert served.status_code == 200 and served.headers["content-type"] == files[0]["mime_type"]


async def test_a_job_spread_over_tasks_is_delivered_whole(delivery, clip):
    """Chunk and rendition tasks carry the job's destination; their scratch stays in the server's bucket."""
    settings, bucket = delivery
    async with running_app(settings, api_workers=1) as api:
        source = await upload(api, clip)
        outputs = [
            {"name": "web", "type": "video", "format": "mp4", "parallel": True},
            {"name": "stream", "type": "hls", "parallel": True},
        ]
        body = {"source": source, "outputs": outputs, "destination": f"s3://{bucket}/deliveries/spread/"}
        submitted = await api.post("/jobs", json=body)
        assert submitted.status_code == 201, submitted.text
        job_id = submitted.json()["job_id"]
        done = await wait_for_final(api, job_id, view="/jobs/{}", timeout=120)
        assert done["status"] == "completed", done
        assert done["tasks"], "the job was not spread"
        delivered = await objects(settings, bucket, f"deliveries/spread/{job_id}/")
        folder = f"deliveries/spread/{job_id}/"
        expected = {"web/web.mp4", "stream/master.m3u8", "stream/120p/index.m3u8", "files.json", "ffmpeg.log"}
        assert {folder + name for name in expected} <= set(delivered), delivered
        assert not [k for k in delivered if "/.tasks/" in k]
        assert await objects(settings, settings.OUTPUT_BUCKET, f"processed/{job_id}/") == {}


@pytest.mark.parametrize(
    "destination, message",
    [
        ("s3://someone-elses-bucket/deliveries/", "not a place this server may write to"),
        ("s3://{bucket}/elsewhere/", "not a place this server may write to"),
        ("s3://{bucket}/deliveries-x/", "not a place this server may write to"),
        ("s3://{bucket}/deliveries/../elsewhere/", "'..' segment"),
        ("s3://{bucket}/deliveries//x/", "invalid storage key"),
        ("https://{bucket}.s3.amazonaws.com/deliveries/", "must be an s3://bucket/prefix/ URI"),
        ("s3://Bad_Bucket/deliveries/", "invalid bucket name"),
        ("s3://{bucket}/deliveries/a\nb/", "a control character"),
    ],
)
async def test_refused_destinations_are_422s_that_name_the_setting(delivery, clip, destination, message):
    settings, bucket = delivery
    async with running_app(settings) as api:
        source = await upload(api, clip)
        body = {"source": source, "method_name": "compress", "destination": destination.format(bucket=bucket)}
        response = await api.post("/process", json=body)
        jobs = await api.post(
            "/jobs", json={"source": source, "template": "web", "destination": destination.format(bucket=bucket)}
        )
    assert response.status_code == jobs.status_code == 422, response.text
    detail = response.json()["detail"]
    assert message in detail, detail
    assert "S3_DESTINATION_BUCKETS" in detail, detail  # every refusal names the setting
    if "may write" in message:
        assert f"s3://{bucket}/deliveries/" in detail


async def test_a_lone_surrogate_in_a_destination_is_a_422_not_a_crash(delivery, clip):
    settings, bucket = delivery
    async with running_app(settings) as api:
        source = await upload(api, clip)
        for path, body in (
            ("/jobs", {"source": source, "template": "web"}),
            ("/process", {"source": source, "method_name": "compress"}),
        ):
            body["destination"] = f"s3://{bucket}/deliveries/\ud800/"
            sent = json.dumps(body)  # ASCII, with the surrogate escaped as JSON allows
            response = await api.post(path, content=sent, headers={"Content-Type": "application/json"})
            assert response.status_code == 422, response.text


async def test_the_servers_own_folders_are_never_a_destination(tmp_path, s3_settings, clip):
    settings = make_settings(tmp_path, S3_DESTINATION_BUCKETS="*", **s3_settings)
    async with running_app(settings) as api:
        source = await upload(api, clip)
        for prefix in ("processed/", "uploads/", ".mediaflow/"):
            destination = f"s3://{settings.OUTPUT_BUCKET}/{prefix}"
            response = await api.post(
                "/process", json={"source": source, "method_name": "compress", "destination": destination}
            )
            assert response.status_code == 422 and "not a place" in response.json()["detail"], response.text


async def test_with_api_keys_no_bucket_is_allowed_by_default(tmp_path, s3_settings, clip):
    settings = make_settings(tmp_path, API_KEYS="alice:alice-key-123", **s3_settings)
    headers = {"X-API-Key": "alice-key-123"}
    async with running_app(settings) as api:
        with open(clip, "rb") as handle:
            source = (await api.post("/upload", files={"file": ("c.mp4", handle)}, headers=headers)).json()["source"]
        body = {"source": source, "method_name": "compress", "destination": "s3://any-bucket/x/"}
        response = await api.post("/process", json=body, headers=headers)
    assert response.status_code == 422 and "delivers to no bucket (S3_DESTINATION_BUCKETS)" in response.text


async def test_local_storage_refuses_a_destination(tmp_path, clip):
    async with running_app(make_settings(tmp_path)) as api:
        source = await upload(api, clip)
        body = {"source": source, "method_name": "compress", "destination": "s3://bucket/prefix/"}
        response = await api.post("/process", json=body)
    assert response.status_code == 422 and "destination needs S3 storage (STORAGE_BACKEND=s3)" in response.text


async def test_an_idempotency_key_replays_only_the_same_destination(delivery, clip):
    settings, bucket = delivery
    async with running_app(settings) as api:
        source = await upload(api, clip)
        body = {"source": source, "method_name": "compress", "destination": f"s3://{bucket}/deliveries/a/"}
        headers = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
        first = await api.post("/process", json=body, headers=headers)
        again = await api.post("/process", json=body, headers=headers)
        other = await api.post("/process", json=body | {"destination": f"s3://{bucket}/deliveries/b/"}, headers=headers)
    assert first.status_code == again.status_code == 200 and first.json()["job_id"] == again.json()["job_id"]
    assert other.status_code == 409, other.text


def test_the_python_client_sends_a_destination_only_when_given():
    from mediaflow.client.sdk import jobs_body, process_body

    assert process_body("s", "compress", None, None, False, "s3://b-1/p/")["destination"] == "s3://b-1/p/"
    assert "destination" not in process_body("s", "compress", None, None, False)
    assert jobs_body("s", "web", None, None, destination="s3://b-1/p/")["destination"] == "s3://b-1/p/"
