"""A chunked job's `.tasks/` folder (split pieces, encoded chunks) is removed when the job is canceled
or deleted, on local storage and on S3 (SeaweedFS): a canceled job is never taken back for the join,
so nothing else would remove them before the job itself goes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from mediaflow.storage.keys import task_key
from tests import media
from tests.apptools import ffmpeg_processes, make_settings, running_app, start_worker, stop_workers
from tests.helpers.s3 import bucket_keys
from tests.helpers.tasks import SLOW, slow_clip, wait_task_running

STORAGES = ["local", pytest.param("s3", marks=pytest.mark.backend)]


@pytest.fixture(params=STORAGES)
def settings(request, tmp_path):
    (tmp_path / "work").mkdir()
    storage = request.getfixturevalue("s3_settings") if request.param == "s3" else {}
    return make_settings(tmp_path, WORK_DIR=tmp_path / "work", CHUNK_SECONDS=0.8, LEASE_SECONDS=3, **storage)


async def task_files(settings, job_id: str) -> list[str]:
    """What is under the job's `.tasks/` folder, read straight from the backend (not through our storage)."""
    folder = task_key(settings, job_id, "")
    if settings.STORAGE_BACKEND == "s3":
        return await bucket_keys(settings, folder)
    root = Path(settings.LOCAL_STORAGE_DIR) / folder
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


async def test_cancel_of_a_running_chunked_job_leaves_no_pieces(settings, tmp_path):
    slow_clip(tmp_path)
    workers = [start_worker(settings, tmp_path, FFMPEG_THREADS="1") for _ in range(2)]
    try:
        async with running_app(settings) as client:
            job_id = (await client.post("/jobs", json={"source": "clip.mp4", "outputs": [SLOW]})).json()["job_id"]
            await wait_task_running(client, job_id)
            assert await task_files(settings, job_id), "the split pieces should be in storage while tasks run"
            assert (await client.post(f"/jobs/{job_id}/cancel")).status_code == 200
            # Until every task stopped (a task storing its result meanwhile stores it after the cancel)
            deadline = time.monotonic() + 20
            while True:
                job = (await client.get(f"/jobs/{job_id}")).json()
                ended = all(t["status"] in ("canceled", "completed") for t in job["tasks"])
                busy = any(ffmpeg_processes(f"mediaflow-w{w.pid}-") for w in workers)
                left = await task_files(settings, job_id)
                if ended and not busy and not left:
                    break
                assert time.monotonic() < deadline, (job["tasks"], left)
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.5)  # a worker that was still settling a task: nothing comes back after
            assert await task_files(settings, job_id) == []
    finally:
        stop_workers(workers)
    assert job["status"] == "canceled", job


async def test_cancel_and_delete_remove_the_tasks_folder_of_a_job_no_worker_took(settings, tmp_path):
    media.detailed_clip(tmp_path / "media", "clip.mp4", width=160, height=90, seconds=1, gop_seconds=0.5)
    async with running_app(settings) as client:  # no worker: the job stays queued
        storage = client.app.state.storage
        spec = {**SLOW, "video": {"preset": "ultrafast"}}
        job_id = (await client.post("/jobs", json={"source": "clip.mp4", "outputs": [spec]})).json()["job_id"]
        piece = tmp_path / "piece.bin"
        piece.write_bytes(b"piece")
        await storage.put_file(task_key(settings, job_id, "piece00000.mp4"), piece, "video/mp4")
        assert (await client.post(f"/jobs/{job_id}/cancel")).status_code == 200
        assert await task_files(settings, job_id) == []
        # a file stored after the cancel (a task that was uploading) goes with the job
        await storage.put_file(task_key(settings, job_id, "encoded00000.mp4"), piece, "video/mp4")
        assert (await client.delete(f"/jobs/{job_id}")).status_code == 204
        assert await task_files(settings, job_id) == []
