"""Chunked encoding across workers (`"parallel": true`): real `python worker.py` processes on the
embedded queue and SQLite, real ffmpeg on short clips with a short GOP, so a few seconds make 3-4 chunks."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from mediaflow.media.outputs import parse_outputs
from mediaflow.media.timeline import read_timeline
from tests import media
from tests.apptools import ffmpeg_processes, make_settings, running_app, start_worker, stop_workers, wait_for_final
from tests.helpers.tasks import PARALLEL, SLOW, slow_clip, wait_task_running


@pytest.fixture
def settings(tmp_path):
    (tmp_path / "work").mkdir()
    # 0.8 s chunks on a 0.5 s GOP: chunks start at 0, 1 and 2 s, plus the audio task
    return make_settings(tmp_path, WORK_DIR=tmp_path / "work", CHUNK_SECONDS=0.8, LEASE_SECONDS=3)


async def wait_final(client, job_id: str, timeout: float = 120) -> dict:
    return await wait_for_final(client, job_id, timeout, view="/jobs/{}")


async def download(client, job_id: str, path: Path) -> Path:
    response = await client.get(f"/jobs/{job_id}/files/main/main.mp4")
    assert response.status_code == 200, response.text
    path.write_bytes(response.content)
    return path


async def test_a_chunked_encode_on_two_workers_matches_a_single_encode(settings, tmp_path):
    media.detailed_clip(tmp_path / "media", "clip.mp4", width=320, height=180, seconds=3, gop_seconds=0.5)
    workers = [start_worker(settings, tmp_path) for _ in range(2)]
    try:
        async with running_app(settings) as client:
            chunked_id = (await client.post("/jobs", json={"source": "clip.mp4", "outputs": [PARALLEL]})).json()[
                "job_id"
            ]
            single_id = (
                await client.post("/jobs", json={"source": "clip.mp4", "outputs": [{**PARALLEL, "parallel": False}]})
            ).json()["job_id"]
            chunked, single = await wait_final(client, chunked_id), await wait_final(client, single_id)
            assert chunked["status"] == "completed" and single["status"] == "completed", (chunked, single)
            joined = await read_timeline(await download(client, chunked_id, tmp_path / "chunked.mp4"))
            whole = await read_timeline(await download(client, single_id, tmp_path / "single.mp4"))
            listed = (await client.get("/jobs")).json()
    finally:
        stop_workers(workers)
    tasks = chunked["tasks"]
    assert sorted(t["kind"] for t in tasks) == ["audio", "chunk", "chunk", "chunk"], tasks
    assert all(t["status"] == "completed" and t["started_at"] and t["completed_at"] for t in tasks), tasks
    assert len({t["worker_id"] for t in tasks}) == 2, f"both workers should have run tasks: {tasks}"
    assert chunked["progress"] == 100 and "encoded in 3 chunks" in chunked["outputs"][0]["notes"][0], chunked
    print(
        f"\nchunked: {joined.video.frames} frames {joined.video.duration:.4f} s; "
        f"single: {whole.video.frames} frames {whole.video.duration:.4f} s"
    )
    assert joined.video.frames == whole.video.frames == 90
    assert abs(joined.video.duration - whole.video.duration) <= 1 / 30 + 1e-3
    assert joined.audio is not None and abs(joined.audio.duration - whole.audio.duration) <= 0.040
    assert joined.video.dts_monotonic and joined.video.pts_unique
    assert listed["count"] == 2, "task records must stay out of GET /jobs"
    pieces = list((Path(settings.LOCAL_STORAGE_DIR) / settings.OUTPUT_PREFIX / chunked_id).rglob(".tasks/*"))
    assert pieces == [], f"the split pieces and encoded chunks must be removed: {pieces}"


async def kill_a_worker_mid_chunk(settings, tmp_path: Path, *, timeout: float) -> tuple[dict, dict]:
    """A slow parallel job on one worker, SIGKILLed while it encodes a chunk, then a fresh worker; returns
    the job once final and the task that was running when the worker died."""
    slow_clip(tmp_path)
    first = start_worker(settings, tmp_path, FFMPEG_THREADS="1")
    workers = [first]
    try:
        async with running_app(settings) as client:
            job_id = (await client.post("/jobs", json={"source": "clip.mp4", "outputs": [SLOW]})).json()["job_id"]
            running = await wait_task_running(client, job_id)
            assert f"-{first.pid}-" in running["worker_id"], running
            await asyncio.sleep(0.3)
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
            workers.append(start_worker(settings, tmp_path, FFMPEG_THREADS="1"))
            return await wait_final(client, job_id, timeout=timeout), running
    finally:
        stop_workers(workers)


async def test_a_worker_killed_during_a_chunk_task_leaves_the_job_to_complete(settings, tmp_path):
    job, running = await kill_a_worker_mid_chunk(settings, tmp_path, timeout=180)
    assert job["status"] == "completed", job
    assert job["attempts"] == 1, "the job itself must not restart: only the killed task runs again"
    killed = next(t for t in job["tasks"] if t["task_id"] == running["task_id"])
    assert killed["attempts"] == 2 and killed["status"] == "completed", killed
    assert [o["status"] for o in job["outputs"]] == ["completed"] and len(job["outputs"][0]["files"]) == 1, job


async def test_a_task_out_of_attempts_fails_its_job_at_once_not_at_the_jobs_long_lease(tmp_path):
    """The reaper that gives up on a task queues its job again, so a worker fails the job now (JOB_TIMEOUT_S
    is an hour here) with that task's reason, and cancels the job's other tasks."""
    (tmp_path / "work").mkdir()
    settings = make_settings(
        tmp_path, WORK_DIR=tmp_path / "work", CHUNK_SECONDS=0.8, LEASE_SECONDS=3, MAX_ATTEMPTS=1, JOB_TIMEOUT_S=3600
    )
    job, _ = await kill_a_worker_mid_chunk(settings, tmp_path, timeout=90)
    assert job["status"] == "failed" and "stopped responding" in job["error"], job
    assert "chunk task" in job["outputs"][0]["error"], job["outputs"]
    assert all(t["status"] in ("failed", "canceled", "completed") for t in job["tasks"]), job["tasks"]


async def test_cancel_stops_every_task(settings, tmp_path):
    slow_clip(tmp_path)
    workers = [start_worker(settings, tmp_path, FFMPEG_THREADS="1") for _ in range(2)]
    try:
        async with running_app(settings) as client:
            job_id = (await client.post("/jobs", json={"source": "clip.mp4", "outputs": [SLOW]})).json()["job_id"]
            await wait_task_running(client, job_id)
            assert (await client.post(f"/jobs/{job_id}/cancel")).status_code == 200
            deadline = time.monotonic() + 15
            while True:
                job = (await client.get(f"/jobs/{job_id}")).json()
                tasks_ended = all(t["status"] in ("canceled", "completed") for t in job["tasks"])
                if tasks_ended and not any(ffmpeg_processes(f"mediaflow-w{w.pid}-") for w in workers):
                    break
                assert time.monotonic() < deadline, (job, [ffmpeg_processes(f"mediaflow-w{w.pid}-") for w in workers])
                await asyncio.sleep(0.2)
    finally:
        stop_workers(workers)
    assert job["status"] == "canceled", job
    assert any(t["status"] == "canceled" for t in job["tasks"]), job["tasks"]


def test_parallel_takes_true_false_or_auto_and_mixes_with_every_other_setting():
    [video, ladder, poster] = parse_outputs(
        [
            {**PARALLEL, "clip": {"start": 1}, "quality": ["vmaf"], "audio": {"loudness": -16}},
            {"name": "stream", "type": "hls"},
            {"name": "poster", "type": "thumbnails", "count": 1},
        ]
    )
    assert video.parallel is True and ladder.parallel == "auto"
    with pytest.raises(ValidationError, match="parallel"):
        parse_outputs([{**PARALLEL, "parallel": "yes"}])
    with pytest.raises(ValidationError, match="parallel"):
        parse_outputs([{"name": "s", "type": "dash", "parallel": True}])


MIXED = [
    {**PARALLEL, "clip": {"start": 0.5, "end": 2.5}, "quality": ["vmaf", "psnr"]},
    {
        "name": "stream",
        "type": "hls",
        "parallel": True,
        "segment_seconds": 1,
        "video": {"preset": "ultrafast"},
        "renditions": [{"height": 180, "bitrate": "300k"}, {"height": 90, "bitrate": "100k"}],
    },
    {"name": "poster", "type": "thumbnails", "count": 1},
    {"name": "late", "type": "video", "clip": {"start": 100}, "video": {"preset": "ultrafast"}},
]


async def test_a_job_of_many_outputs_spreads_them_as_tasks_and_puts_each_together(settings, tmp_path):
    """Chunks with a clip and quality, a ladder's renditions, a whole output, and one that fails: the job
    fails naming it, and every other output is complete and downloadable."""
    media.detailed_clip(tmp_path / "media", "clip.mp4", width=320, height=180, seconds=3, gop_seconds=0.5)
    workers = [start_worker(settings, tmp_path) for _ in range(2)]
    try:
        async with running_app(settings) as client:
            job_id = (await client.post("/jobs", json={"source": "clip.mp4", "outputs": MIXED})).json()["job_id"]
            job = await wait_final(client, job_id)
            clip = await read_timeline(await download(client, job_id, tmp_path / "chunked.mp4"))
            master = (await client.get(f"/jobs/{job_id}/files/stream/master.m3u8")).text
            low = (await client.get(f"/jobs/{job_id}/files/stream/90p/index.m3u8")).text
            job_log = (await client.get(f"/jobs/{job_id}/log")).text
    finally:
        stop_workers(workers)
    assert job["status"] == "failed" and "'late'" in job["error"], (job["outputs"], job["tasks"])
    by_kind = sorted((t["output"], t["kind"]) for t in job["tasks"])
    assert by_kind == [
        ("late", "output"),
        ("main", "audio"),
        ("main", "chunk"),
        ("main", "chunk"),
        ("poster", "output"),
        ("stream", "rendition"),
        ("stream", "rendition"),
    ], by_kind
    outputs = {o["name"]: o for o in job["outputs"]}
    assert [outputs[n]["status"] for n in ("main", "stream", "poster", "late")] == ["completed"] * 3 + ["failed"]
    assert "past the end of the source" in outputs["late"]["error"]
    assert clip.video.frames == 60 and abs(clip.audio.duration - clip.video.duration) <= 0.040, clip
    main = outputs["main"]
    assert main["quality"]["vmaf"]["mean"] > 50 and main["quality"]["psnr"]["mean"] > 20, main
    assert {f["path"] for f in main["files"]} == {"main/main.mp4", "main/main.quality.csv"}, main
    assert master.count("#EXT-X-STREAM-INF") == 2 and master.index("180p/index.m3u8") < master.index(
        "90p/index.m3u8"
    ), master
    assert "RESOLUTION=320x180" in master and "#EXT-X-ENDLIST" in low, master
    assert outputs["stream"]["segments"]["count"] >= 6 and outputs["poster"]["files"][0]["path"].startswith("poster/")
    assert job_log.count("===== task ") == 7 and "===== task main chunk 1 on " in job_log, job_log[:2000]
    assert "main.join" in job_log and "Lsize=" in job_log, "the join's own ffmpeg run is in the job's log"
    pieces = list((Path(settings.LOCAL_STORAGE_DIR) / settings.OUTPUT_PREFIX / job_id).rglob(".tasks/*"))
    assert pieces == [], f"the tasks' temporary files must be removed: {pieces}"
    folders = [p.name for p in (Path(settings.LOCAL_STORAGE_DIR) / settings.OUTPUT_PREFIX).iterdir()]
    assert folders == [job_id], f"tasks keep nothing outside their job's folder: {folders}"


async def test_a_burst_worker_runs_the_tasks_of_the_job_it_split_then_exits(settings, tmp_path):
    media.detailed_clip(tmp_path / "media", "clip.mp4", width=320, height=180, seconds=3, gop_seconds=0.5)
    async with running_app(settings) as client:
        job_id = (await client.post("/jobs", json={"source": "clip.mp4", "outputs": [PARALLEL]})).json()["job_id"]
    worker = start_worker(settings, tmp_path, "--burst")
    assert worker.wait(timeout=120) == 0
    async with running_app(settings) as client:
        job = (await client.get(f"/jobs/{job_id}")).json()
    assert job["status"] == "completed" and len(job["tasks"]) == 4, job
