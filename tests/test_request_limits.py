"""Per-key and per-request limits (issue 12, item 4): MAX_ACTIVE_JOBS_PER_KEY, MAX_REQUEST_BODY_BYTES,
and a 422 that never echoes a huge or unencodable value."""

from __future__ import annotations

import json

import pytest

from tests import media
from tests.apptools import make_settings, running_app

ALICE = {"X-API-Key": "alice-key-123"}
BOB = {"X-API-Key": "bob-key-4567"}


@pytest.fixture
async def api(tmp_path):
    # No workers: submitted jobs stay queued, which is what the limit counts.
    settings = make_settings(tmp_path, API_KEYS="alice:alice-key-123,bob:bob-key-4567", MAX_ACTIVE_JOBS_PER_KEY=3)
    clip = media.make_clip(tmp_path / "media", "clip.mp4", seconds=1)
    async with running_app(settings) as client:
        client.source = str(clip)  # type: ignore[attr-defined]
        yield client


async def submit(api, headers, **extra):
    return await api.post(
        "/process", json={"source": api.source, "method_name": "compress"}, headers={**headers, **extra}
    )


async def test_active_jobs_per_key_are_limited_with_retry_after(api) -> None:
    accepted = [await submit(api, ALICE) for _ in range(3)]
    assert [r.status_code for r in accepted] == [200, 200, 200]
    refused = await submit(api, ALICE)
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["Retry-After"]) > 0
    assert "MAX_ACTIVE_JOBS_PER_KEY=3" in refused.json()["detail"]
    assert (await api.get("/process", headers=ALICE, params={"status": "queued"})).json()["count"] == 3
    # Another key is not held back by alice's jobs.
    assert (await submit(api, BOB)).status_code == 200
    first = accepted[0].json()["job_id"]
    # Canceling one frees a place; retrying it takes the place back.
    assert (await api.post(f"/jobs/{first}/cancel", headers=ALICE)).status_code == 200
    assert (await submit(api, ALICE)).status_code == 200
    retry = await api.post(f"/jobs/{first}/retry", headers=ALICE)
    assert retry.status_code == 429 and "Retry-After" in retry.headers


async def test_an_idempotent_replay_is_answered_at_the_limit(api) -> None:
    key = {"Idempotency-Key": "once"}
    first = await submit(api, ALICE, **key)
    for _ in range(2):
        assert (await submit(api, ALICE)).status_code == 200
    replay = await submit(api, ALICE, **key)
    assert replay.status_code == 200 and replay.json()["job_id"] == first.json()["job_id"]


async def test_a_large_body_is_refused_before_it_is_read(api) -> None:
    body = json.dumps({"source": "x" * (50 * 1024 * 1024), "method_name": "compress"})
    response = await api.post("/process", content=body, headers={**ALICE, "Content-Type": "application/json"})
    assert response.status_code == 413, response.text[:300]
    assert "MAX_REQUEST_BODY_BYTES" in response.json()["detail"]


async def test_a_large_chunked_body_is_refused_once_past_the_limit(api) -> None:
    chunks_sent = 0

    async def body():
        nonlocal chunks_sent
        yield b'{"source": "'
        for _ in range(64):  # 64 MB offered, 1 MB allowed
            chunks_sent += 1
            yield b"x" * (1024 * 1024)
        yield b'", "method_name": "compress"}'

    response = await api.post("/process", content=body(), headers={**ALICE, "Content-Type": "application/json"})
    assert response.status_code == 413, response.text[:300]
    assert chunks_sent < 64  # stopped reading early


@pytest.mark.parametrize("bad_value", ["y" * (900 * 1024), float("nan"), "\ud800"])
async def test_a_422_echoes_only_a_short_preview(api, bad_value) -> None:
    # 900 KB passes the body limit; NaN and a lone surrogate made FastAPI's default 422 handler crash.
    body = json.dumps({"source": api.source, "method_name": "compress", "output_format": 7, "callback_url": bad_value})
    response = await api.post("/process", content=body, headers={**ALICE, "Content-Type": "application/json"})
    assert response.status_code == 422, response.text[:300]
    assert len(response.content) < 4000
    assert any(error["loc"][-1] == "callback_url" for error in response.json()["detail"])
