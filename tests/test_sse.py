"""GET /jobs/{id}/events against the real server (uvicorn subprocess): ordered events, final close."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from tests import media
from tests.apptools import ApiServer, make_settings


async def read_stream(client: httpx.AsyncClient, url: str, headers: dict | None = None, frames: list | None = None):
    """Every frame of an SSE response as (kind, payload): ("job", dict) for events, ("comment", text)."""
    frames = [] if frames is None else frames
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        event: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith(":"):
                frames.append(("comment", line[1:].strip()))
            elif line == "":
                if event:
                    frames.append((event.get("event"), json.loads(event["data"]) | {"_id": event.get("id")}))
                event = {}
            else:
                name, _, value = line.partition(":")
                event[name] = value.removeprefix(" ")
    return frames


@pytest.fixture
def clip(tmp_path):
    (tmp_path / "media").mkdir()
    return media.make_clip(tmp_path / "media", "clip.mp4", width=640, height=360, seconds=8)


async def test_events_arrive_in_order_and_end_with_the_final_status(tmp_path, clip):
    settings = make_settings(tmp_path, SSE_POLL_INTERVAL_S=0.1, PROGRESS_WRITE_INTERVAL_S=0.2)
    with ApiServer(settings, tmp_path, api_workers=1) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            job_id = (await client.post("/process", json={"source": str(clip), "method_name": "resize"})).json()[
                "job_id"
            ]
            started = time.monotonic()
            frames = await read_stream(client, f"/jobs/{job_id}/events")
            elapsed = time.monotonic() - started

            events = [payload for kind, payload in frames if kind == "job"]
            versions = [int(e["_id"]) for e in events]
            assert versions == sorted(set(versions)), "event ids (job versions) strictly increase"
            progress = [e["progress"] for e in events]
            assert progress == sorted(progress), f"progress never goes back: {progress}"
            assert len({p for p in progress if 0 < p < 100}) >= 3, f"several intermediate progress events: {progress}"
            statuses = [e["status"] for e in events]
            assert statuses[-1] == "completed" and progress[-1] == 100 and events[-1]["phase"] == "done"
            assert statuses.count("completed") == 1, "the stream closes right after the final event"
            assert set(statuses) <= {"queued", "processing", "completed"}
            assert statuses.index("processing") < statuses.index("completed")
            encoding = [e for e in events if e["phase"] == "encoding" and e["eta_seconds"] is not None]
            assert encoding and all(e["speed"] > 0 for e in encoding), "encode events carry speed and ETA"

            # The stream ended with the job, not with a timeout.
            status = (await client.get(f"/status/{job_id}")).json()
            assert status["status"] == "completed" and elapsed < 60

            # A client reconnecting with the final event's id gets nothing more, at once.
            again = await read_stream(client, f"/jobs/{job_id}/events", headers={"Last-Event-ID": events[-1]["_id"]})
            assert again == []
            # Without it, a late subscriber gets the final state and the stream closes.
            late = await read_stream(client, f"/jobs/{job_id}/events")
            assert [(k, p["status"]) for k, p in late] == [("job", "completed")]


async def test_idle_stream_sends_keepalives_and_ends_on_cancel(tmp_path, clip):
    # No workers: the job stays queued until canceled.
    settings = make_settings(tmp_path, SSE_POLL_INTERVAL_S=0.1, SSE_KEEPALIVE_S=0.3)
    with ApiServer(settings, tmp_path, api_workers=0) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            job_id = (await client.post("/process", json={"source": str(clip), "method_name": "compress"})).json()[
                "job_id"
            ]
            frames: list = []
            reader = asyncio.create_task(read_stream(client, f"/jobs/{job_id}/events", frames=frames))
            deadline = time.monotonic() + 10
            while not any(kind == "comment" for kind, _ in frames) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert (await client.post(f"/jobs/{job_id}/cancel")).status_code == 200
            await asyncio.wait_for(reader, timeout=10)

    kinds = [kind for kind, _ in frames]
    assert kinds[0] == "job" and frames[0][1]["status"] == "queued"
    assert "keep-alive" in [payload for kind, payload in frames if kind == "comment"]
    assert kinds[-1] == "job" and frames[-1][1]["status"] == "canceled"


async def test_unknown_job_is_404_and_stream_has_an_upper_bound(tmp_path, clip):
    settings = make_settings(tmp_path, SSE_POLL_INTERVAL_S=0.1, SSE_MAX_STREAM_S=1)
    with ApiServer(settings, tmp_path, api_workers=0) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            assert (await client.get("/jobs/no-such-job/events")).status_code == 404
            job_id = (await client.post("/process", json={"source": str(clip), "method_name": "compress"})).json()[
                "job_id"
            ]
            started = time.monotonic()
            frames = await read_stream(client, f"/jobs/{job_id}/events")
            assert time.monotonic() - started < 5, "a stream ends after SSE_MAX_STREAM_S; clients reconnect"
            assert [(k, p["status"]) for k, p in frames if k == "job"] == [("job", "queued")]


class CountingStore:
    """The real SQLite store, counting `get` calls (instrumentation, not a stand-in)."""

    def __init__(self, store) -> None:
        self.store, self.gets = store, 0

    async def get(self, job_id: str):
        self.gets += 1
        return await self.store.get(job_id)


async def test_many_followers_of_one_job_share_one_store_poller(tmp_path):
    from mediaflow.api.sse import JobWatch, job_event_frames
    from mediaflow.jobs import lifecycle
    from mediaflow.jobs.model import Job, Method
    from mediaflow.store.sqlite import SqliteJobStore

    store = await SqliteJobStore.open(tmp_path / "jobs.db")
    try:
        job = Job(method_name=Method.COMPRESS, source="a.mp4", output_format="mp4")
        await store.create(job)
        counting = CountingStore(store)
        watch = JobWatch(counting, poll_interval_s=0.1)

        async def follow() -> list[str]:
            return [frame async for frame in job_event_frames(watch, job.job_id, keepalive_s=60, max_stream_s=30)]

        followers = [asyncio.create_task(follow()) for _ in range(20)]
        await asyncio.sleep(1.0)
        assert watch.watched_jobs == 1
        assert counting.gets <= 15, f"one poller for 20 followers: {counting.gets} reads in 1 s at 0.1 s"
        await lifecycle.cancel(store, job)
        streams = await asyncio.wait_for(asyncio.gather(*followers), 5)
    finally:
        await store.close()

    assert watch.watched_jobs == 0, "the poller stops with its last follower"
    for frames in streams:
        assert [f.split("\n")[0] for f in frames] == ["id: 0", "id: 1"]
        assert '"status":"canceled"' in frames[-1]
