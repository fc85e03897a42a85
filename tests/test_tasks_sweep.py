"""A task whose Kafka message was lost is found by an idle worker's store sweep (real Tansu broker, the
SQLite store, a real `python worker.py`), not only after its job's lease (JOB_TIMEOUT_S) runs out."""

from __future__ import annotations

import asyncio
import time

import pytest

from mediaflow.jobs import lifecycle
from mediaflow.jobs.model import Job, JobStatus, Method
from mediaflow.jobs.tasks import TaskSpec, new_task
from mediaflow.storage.keys import task_key
from mediaflow.store import open_store
from tests import media
from tests.apptools import make_settings, start_worker, stop_workers, worker_events

pytestmark = pytest.mark.backend


async def test_a_kafka_worker_sweeps_a_queued_task_nobody_published(tmp_path, kafka_settings):
    settings = make_settings(tmp_path, **kafka_settings, QUEUED_SWEEP_AFTER_S=1, JOB_TIMEOUT_S=3600)
    media.make_clip(tmp_path / "media", "clip.mp4", width=160, height=90, seconds=1)
    store = await open_store(settings)
    try:
        # A job a (gone) worker split and handed to its tasks: awaiting them, with a lease of an hour.
        parent = Job(source="clip.mp4", method_name=Method.EXTRACT_AUDIO, output_format="mp3")
        await store.create(parent)
        assert await lifecycle.claim(store, parent.job_id, "splitter", 30, 3) is not None
        assert await lifecycle.hand_to_tasks(store, parent.job_id, "splitter", settings.JOB_TIMEOUT_S) is not None
        spec = TaskSpec(
            kind="audio",
            total=1,
            result=task_key(settings, parent.job_id, "audio"),
            options=["-c:a", "aac", "-b:a", "64k"],
            muxer="mp4",
        )
        task = new_task(parent, spec)
        await store.create(task)  # and never published: its message was lost
        worker = start_worker(settings, tmp_path)
        try:
            deadline = time.monotonic() + 60
            while (found := await store.get_record(task.job_id)).status is not JobStatus.COMPLETED:
                assert found.status in (JobStatus.QUEUED, JobStatus.PROCESSING), found
                assert time.monotonic() < deadline, f"the queued task was never swept: {found}"
                await asyncio.sleep(0.2)
        finally:
            stop_workers([worker])
        assert f"-{worker.pid}-" in found.worker_id, found
        swept = [e for e in worker_events(worker) if e.get("event") == "job.swept"]
        assert [e["job_id"] for e in swept] == [task.job_id], swept
    finally:
        await store.close()
