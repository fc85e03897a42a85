"""Every endpoint and every error path, through httpx + ASGITransport with the lifespan running.

These tests run no worker (api_workers=0): jobs stay queued, so states are deterministic."""

from __future__ import annotations

import uuid

import pytest

from mediaflow.jobs.model import JobStatus
from tests.apptools import make_settings, running_app


@pytest.fixture
async def api(tmp_path):
    settings = make_settings(tmp_path, UPLOAD_MAX_BYTES=100_000)
    (tmp_path / "media" / "clip.mp4").write_bytes(b"not decoded by these tests")
    async with running_app(settings) as client:
        client.media = tmp_path / "media"
        client.storage_dir = tmp_path / "storage"
        yield client


async def submit(api, **body):
    body.setdefault("source", "clip.mp4")
    body.setdefault("method_name", "compress")
    return await api.post("/process", json=body)


async def test_root_health_and_readiness(api):
    assert (await api.get("/")).json() == {"status": "ok"}
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "backends": {"store:sqlite": "ok", "queue:embedded": "ok", "storage:local": "ok"},
        "details": {
            "queue_backend": "embedded (QUEUE_BACKEND unset; the embedded default with DB_BACKEND=sqlite)",
            "storage_backend": "local (STORAGE_BACKEND unset; the embedded default with DB_BACKEND=sqlite)",
        },
    }


async def test_openapi_docs_with_examples(api):
    assert (await api.get("/docs")).status_code == 200
    schema = (await api.get("/openapi.json")).json()
    assert {"/", "/process", "/status/{job_id}", "/download/{job_id}", "/upload"} <= set(schema["paths"])
    assert schema["components"]["schemas"]["ProcessRequest"]["examples"]


async def test_process_returns_queued_job_and_status_has_the_seed_fields(api):
    response = await submit(api, output_format="mp4")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "queued" and uuid.UUID(body["job_id"])
    status = (await api.get(f"/status/{body['job_id']}")).json()
    seed_fields = ["job_id", "status", "progress", "created_at", "completed_at", "error", "output_path", "log_path"]
    assert list(status)[:8] == seed_fields
    assert status["status"] == "queued" and status["progress"] == 0 and status["completed_at"] is None
    assert status["created_at"].endswith("Z")


async def test_default_output_format_depends_on_method(api):
    video = (await submit(api, method_name="resize")).json()["job_id"]
    audio = (await submit(api, method_name="extract_audio")).json()["job_id"]
    assert (await api.get(f"/status/{video}")).json()["output_format"] == "mp4"
    assert (await api.get(f"/status/{audio}")).json()["output_format"] == "mp3"


@pytest.mark.parametrize(
    "body,fragment",
    [
        ({"method_name": "sharpen"}, "method_name"),
        ({"output_format": "avi"}, "mp4, mov, mkv, webm"),
        ({"method_name": "extract_audio", "output_format": "mp4"}, "mp3"),
        ({"source": "/etc/passwd"}, "no such file under media/"),
        ({"source": "../../etc/passwd"}, "no such file under media/"),
        ({"source": "http://169.254.169.254/latest"}, "169.254.169.254, a link-local address"),
        ({"source": "s3://bucket/video.mp4"}, "S3 is not configured"),
        ({"source": "upload://" + "0" * 32 + "/missing.mp4"}, "no uploaded file"),
        ({"source": ""}, "source"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
async def test_invalid_process_requests_are_422_with_a_helpful_message(api, body, fragment):
    response = await submit(api, **body)
    assert response.status_code == 422, response.text
    assert fragment in response.text


async def test_missing_fields_and_bad_json_are_422(api):
    assert (await api.post("/process", json={"method_name": "compress"})).status_code == 422
    assert (
        await api.post("/process", content=b"{not json", headers={"content-type": "application/json"})
    ).status_code == 422


async def test_unknown_job_ids_are_404(api):
    for path in ("/status/{}", "/download/{}", "/jobs/{}/log"):
        for job_id in (str(uuid.uuid4()), "not-a-uuid", "x" * 500):
            response = await api.get(path.format(job_id))
            assert response.status_code == 404, (path, job_id)
    assert (await api.post(f"/jobs/{uuid.uuid4()}/cancel")).status_code == 404


async def test_download_of_an_unfinished_job_is_409(api):
    job_id = (await submit(api)).json()["job_id"]
    response = await api.get(f"/download/{job_id}")
    assert response.status_code == 409 and "queued" in response.json()["detail"]


async def test_list_newest_first_with_pagination_and_bounds(api):
    ids = [(await submit(api)).json()["job_id"] for _ in range(12)]
    page1 = (await api.get("/process", params={"limit": 5})).json()
    page3 = (await api.get("/process", params={"limit": 5, "skip": 10})).json()
    assert page1["count"] == 5 and [job["job_id"] for job in page1["jobs"]] == ids[::-1][:5]
    assert page3["count"] == 2 and [job["job_id"] for job in page3["jobs"]] == ids[::-1][10:]
    assert (await api.get("/process")).json()["count"] == 10  # the seed's default limit
    assert (await api.get("/process", params={"status": "completed"})).json() == {"jobs": [], "count": 0}
    for params in ({"limit": 0}, {"limit": 101}, {"skip": -1}, {"status": "weird"}):
        assert (await api.get("/process", params=params)).status_code == 422, params


async def test_upload_then_process_the_upload(api):
    files = {"file": ("My Clip.mp4", b"\x00\x01" * 1000, "video/mp4")}
    response = await api.post("/upload", files=files)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["source"].startswith("upload://") and body["filename"] == "My_Clip.mp4" and body["size"] == 2000
    stored = list((api.storage_dir / "uploads").rglob("My_Clip.mp4"))
    assert len(stored) == 1 and stored[0].read_bytes() == b"\x00\x01" * 1000
    processed = await submit(api, source=body["source"])
    assert processed.status_code == 200


async def test_upload_over_the_limit_is_413_and_leaves_nothing(api):
    big = {"file": ("big.mp4", b"x" * 200_000, "video/mp4")}
    response = await api.post("/upload", files=big)
    assert response.status_code == 413 and "UPLOAD_MAX_BYTES" in response.text
    assert not [p for p in (api.storage_dir / "uploads").rglob("*") if p.is_file()], "no partial upload left"


async def test_upload_streamed_without_content_length_is_still_limited(api):
    boundary = "b0undary"

    async def body():
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'.encode()
        for _ in range(30):
            yield b"y" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await api.post(
        "/upload", content=body(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status_code == 413
    assert not [p for p in (api.storage_dir / "uploads").rglob("*") if p.is_file()], "no partial upload left"


async def test_upload_errors_are_422(api):
    assert (await api.post("/upload", content=b"raw", headers={"content-type": "video/mp4"})).status_code == 422
    wrong_field = await api.post("/upload", files={"video": ("a.mp4", b"x", "video/mp4")})
    assert wrong_field.status_code == 422 and "'file'" in wrong_field.text


async def test_idempotency_key_returns_the_same_job(api):
    headers = {"Idempotency-Key": "order-42"}
    first = await api.post("/process", json={"source": "clip.mp4", "method_name": "compress"}, headers=headers)
    again = await api.post("/process", json={"source": "clip.mp4", "method_name": "compress"}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json()["job_id"] == again.json()["job_id"]
    assert (await api.get("/process")).json()["count"] == 1
    different = await api.post("/process", json={"source": "clip.mp4", "method_name": "resize"}, headers=headers)
    assert different.status_code == 409
    found = (await api.get("/process", params={"idempotency_key": "order-42"})).json()
    assert [job["job_id"] for job in found["jobs"]] == [first.json()["job_id"]] and found["count"] == 1
    assert (await api.get("/process", params={"idempotency_key": "order-43"})).json() == {"jobs": [], "count": 0}
    assert (await api.get("/process", params={"idempotency_key": "order-42", "status": "failed"})).json()["count"] == 0


async def test_an_empty_idempotency_key_is_refused(api):
    """Found by schemathesis: an empty key was taken for "no key" by the lookup but stored as a key, so
    the second empty-keyed request hit the unique index and answered 500."""
    for _ in range(2):
        response = await api.post(
            "/process", json={"source": "clip.mp4", "method_name": "compress"}, headers={"Idempotency-Key": ""}
        )
        assert response.status_code == 422 and "idempotency-key" in response.text.lower()
    assert (await api.get("/process")).json()["count"] == 0


async def test_cancel_and_retry(api):
    job_id = (await submit(api)).json()["job_id"]
    canceled = await api.post(f"/jobs/{job_id}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == JobStatus.CANCELED
    assert (await api.post(f"/jobs/{job_id}/cancel")).status_code == 409
    retried = await api.post(f"/jobs/{job_id}/retry")
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    assert (await api.post(f"/jobs/{job_id}/retry")).status_code == 409
