"""A job spread over workers (chunks, renditions, a whole output) on the production shape: the API
(uvicorn) and two `python worker.py` on Kafka + MongoDB + S3. Task ids travel through Kafka, the split pieces and encoded chunks through the bucket."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

import httpx
import pytest

from mediaflow.media.timeline import read_timeline
from tests import media
from tests.apptools import (
    ApiServer,
    make_settings,
    start_worker,
    stop_workers,
    wait_for_final,
    wait_for_kafka_assignments,
)
from tests.helpers.s3 import bucket_keys, put_source

pytestmark = pytest.mark.backend


async def test_chunked_encode_on_kafka_mongodb_and_s3(tmp_path, kafka_settings, s3_settings, mongo_settings):
    clip = media.detailed_clip(tmp_path, "gop.mp4", width=320, height=180, seconds=3, gop_seconds=0.5)
    settings = make_settings(
        tmp_path,
        **mongo_settings,
        **kafka_settings,
        **s3_settings,
        # Tasks hash to partitions at random (7 of them all on one worker's: about one run in sixty), and
        # they take a few tenths of a second: an idle worker takes waiting ones from the store quickly.
        QUEUED_SWEEP_AFTER_S=0.3,
        POLL_INTERVAL_S=0.2,
        CHUNK_SECONDS=0.8,
        LEASE_SECONDS=3,
    )
    source = await put_source(settings, f"sources-{uuid.uuid4().hex[:12]}", "in/gop.mp4", clip)
    specs = [
        {"name": "main", "type": "video", "parallel": True, "video": {"preset": "ultrafast", "target_vmaf": 90}},
        {
            "name": "stream",
            "type": "hls",
            "parallel": True,
            "segment_seconds": 1,
            "video": {"preset": "ultrafast"},
            "renditions": [{"height": 180, "bitrate": "300k"}, {"height": 90, "bitrate": "100k"}],
        },
        {"name": "poster", "type": "thumbnails", "count": 1},
    ]
    with ApiServer(settings, tmp_path) as server:
        workers = [start_worker(settings, tmp_path) for _ in range(2)]
        try:
            await wait_for_kafka_assignments(workers)  # seen: a job sent before the rebalance ran on one worker
            created = httpx.post(f"{server.url}/jobs", json={"source": source, "outputs": specs})
            assert created.status_code == 201, created.text
            job_id = created.json()["job_id"]
            async with httpx.AsyncClient(base_url=server.url) as client:
                job = await wait_for_final(client, job_id, 120, view="/jobs/{}")
            joined = tmp_path / "joined.mp4"
            joined.write_bytes(httpx.get(f"{server.url}/jobs/{job_id}/files/main/main.mp4").content)
        finally:
            stop_workers(workers)
    assert job["status"] == "completed", job
    timeline = await read_timeline(joined)  # the chunks joined through the bucket: every source frame, A/V aligned
    assert timeline.video.frames == 90 and abs(timeline.audio.duration - timeline.video.duration) <= 0.040, timeline
    assert len({t["worker_id"] for t in job["tasks"]}) == 2, f"both workers should have taken tasks: {job['tasks']}"
    kinds = sorted(t["kind"] for t in job["tasks"])
    assert kinds == ["audio", "chunk", "chunk", "chunk", "output", "rendition", "rendition"], job["tasks"]
    main = job["outputs"][0]
    assert abs(main["crf_search"]["vmaf"] - 90) <= 3, main  # the full output's VMAF, measured after the join
    assert all(t["status"] == "completed" for t in job["tasks"]), job["tasks"]
    prefix = f"{settings.OUTPUT_PREFIX}/{job_id}/"
    keys = await bucket_keys(settings, prefix)
    assert {prefix + p for p in ("main/main.mp4", "stream/master.m3u8", "stream/90p/index.m3u8")} <= set(keys), keys
    assert not [k for k in keys if "/.tasks/" in k], keys


async def test_a_worker_killed_mid_chunk_on_kafka_costs_that_chunk_only(
    tmp_path, kafka_settings, s3_settings, mongo_settings
):
    """The killed worker's task lease runs out, the reaper re-queues that task alone and publishes it through
    Kafka, the other worker encodes it; the job does not restart and ends with one output, no pieces left."""
    clip = media.detailed_clip(tmp_path, "slow.mp4", width=480, height=270, seconds=3, gop_seconds=0.5, noise=20)
    settings = make_settings(
        tmp_path,
        **mongo_settings,
        **kafka_settings,
        **s3_settings,
        QUEUED_SWEEP_AFTER_S=5,
        CHUNK_SECONDS=0.8,
        LEASE_SECONDS=3,
    )
    source = await put_source(settings, f"sources-{uuid.uuid4().hex[:12]}", "in/slow.mp4", clip)
    spec = {"name": "main", "type": "video", "parallel": True, "video": {"preset": "slower", "crf": 20}}
    with ApiServer(settings, tmp_path) as server:
        first = start_worker(settings, tmp_path, FFMPEG_THREADS="1")
        workers = [first]
        try:
            job_id = httpx.post(f"{server.url}/jobs", json={"source": source, "outputs": [spec]}).json()["job_id"]
            deadline = time.monotonic() + 90
            while True:
                job = httpx.get(f"{server.url}/jobs/{job_id}").json()
                if any(t["kind"] == "chunk" and t["status"] == "processing" for t in job["tasks"]):
                    break
                assert time.monotonic() < deadline and job["status"] in ("queued", "processing"), job
                await asyncio.sleep(0.05)
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
            workers.append(start_worker(settings, tmp_path, FFMPEG_THREADS="1"))
            async with httpx.AsyncClient(base_url=server.url) as client:
                job = await wait_for_final(client, job_id, 180, view="/jobs/{}")
        finally:
            stop_workers(workers)
    assert job["status"] == "completed" and job["attempts"] == 1, job
    assert max(t["attempts"] for t in job["tasks"]) == 2, job["tasks"]
    keys = await bucket_keys(settings, f"{settings.OUTPUT_PREFIX}/{job_id}/")
    assert not [k for k in keys if "/.tasks/" in k], keys
