"""Removing finished jobs: `DELETE /jobs/{id}` on a real encoded job (record, output and log gone),
its refusals, and the retention sweeper (JOB_RETENTION_HOURS) on every job store (real servers) and
real storage."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from mediaflow.jobs.model import Job, JobStatus, Method, utcnow
from mediaflow.jobs.retention import RetentionSweeper
from mediaflow.media.sources import parse_source, upload_source
from mediaflow.storage import open_storage
from mediaflow.store import open_store
from tests.apptools import make_settings, running_app, wait_for_final
from tests.helpers.stores import BACKENDS, backend_overrides
from tests.media import make_clip

S = JobStatus


async def test_delete_removes_a_finished_job_with_its_output_and_log(tmp_path):
    settings = make_settings(tmp_path)
    make_clip(tmp_path / "media", "clip.mp4", width=320, height=240, seconds=1)
    async with running_app(settings, api_workers=1) as client:
        job_id = (await client.post("/process", json={"source": "clip.mp4", "method_name": "compress"})).json()[
            "job_id"
        ]
        done = await wait_for_final(client, job_id)
        assert done["status"] == "completed"
        files = [settings.LOCAL_STORAGE_DIR / done["output_path"], settings.LOCAL_STORAGE_DIR / done["log_path"]]
        assert all(path.is_file() for path in files)

        response = await client.delete(f"/jobs/{job_id}")
        assert response.status_code == 204 and response.content == b""
        assert not any(path.exists() for path in files) and not files[0].parent.exists(), "the job's folder too"
        for path in (f"/status/{job_id}", f"/download/{job_id}", f"/jobs/{job_id}/log"):
            assert (await client.get(path)).status_code == 404, path
        assert (await client.delete(f"/jobs/{job_id}")).status_code == 404
        assert (await client.get("/process")).json()["count"] == 0


async def test_only_finished_jobs_can_be_deleted(tmp_path):
    settings = make_settings(tmp_path)
    (tmp_path / "media" / "clip.mp4").write_bytes(b"never decoded: no worker runs")
    async with running_app(settings, api_workers=0) as client:
        job_id = (await client.post("/process", json={"source": "clip.mp4", "method_name": "resize"})).json()["job_id"]
        refused = await client.delete(f"/jobs/{job_id}")
        assert (
            refused.status_code == 409
            and "queued" in refused.json()["detail"]
            and "cancel it first" in refused.json()["detail"]
        )
        assert (await client.post(f"/jobs/{job_id}/cancel")).status_code == 200
        assert (await client.delete(f"/jobs/{job_id}")).status_code == 204
        assert (await client.delete("/jobs/not-a-job")).status_code == 404


@pytest.mark.parametrize("backend", BACKENDS)
async def test_retention_removes_only_jobs_finished_before_the_cutoff(request, backend, tmp_path):
    # Local storage whatever the store: a seed-style DB_BACKEND alone now implies S3 (settings.py).
    settings = make_settings(
        tmp_path,
        JOB_RETENTION_HOURS=24,
        **backend_overrides(request, backend, tmp_path),
        STORAGE_BACKEND="local",
        QUEUE_BACKEND="embedded",
    )
    store, storage = await open_store(settings), await open_storage(settings)
    now = utcnow()

    async def job(status: JobStatus, created_hours_ago: float, finished_hours_ago: float | None, **fields) -> Job:
        output = tmp_path / "storage" / "processed" / f"{status.value}-{created_hours_ago}" / "out.mp4"
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(b"output")
        record = Job(
            method_name=Method.COMPRESS,
            source="clip.mp4",
            output_format="mp4",
            status=status,
            created_at=now - timedelta(hours=created_hours_ago),
            output_path=str(output),
            completed_at=None if finished_hours_ago is None else now - timedelta(hours=finished_hours_ago),
            **fields,
        )
        await store.create(record)
        return record

    try:
        old = [await job(S.COMPLETED, 50, 49), await job(S.FAILED, 30, 29.9), await job(S.CANCELED, 26, 25)]
        many_old = [await job(S.COMPLETED, 100 + i, 99 + i) for i in range(120)]  # more than a page
        kept = [
            await job(S.COMPLETED, 30, 2),  # created long ago, finished recently
            await job(S.COMPLETED, 1, 0.5),
            await job(S.PROCESSING, 40, None),  # never removed while running
            await job(
                S.FAILED, 40, 39, webhook_event="job.failed", webhook_event_id="e1", webhook_due_at=now
            ),  # its final webhook is still to be delivered
        ]
        sweeper = RetentionSweeper(settings, store, storage)
        assert await sweeper.sweep(now) == len(old) + len(many_old)
        assert {j.job_id for j in await store.list(limit=200)} == {j.job_id for j in kept}
        assert not any(Path(j.output_path).exists() for j in old + many_old)
        assert all(Path(j.output_path).exists() for j in kept)
        assert await sweeper.sweep(now) == 0
    finally:
        await store.close()
        await storage.close()


async def test_retention_removes_old_uploads_no_unfinished_job_needs(tmp_path):
    settings = make_settings(tmp_path, JOB_RETENTION_HOURS=24)
    store, storage = await open_store(settings), await open_storage(settings)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"uploaded video")
    long_ago = (utcnow() - timedelta(hours=30)).timestamp()

    async def upload(name: str, old: bool = True, owner: str | None = None) -> str:
        source, key = upload_source(name, owner)
        await storage.put_file(key, clip, "video/mp4")
        if old:
            os.utime(storage.root / key, (long_ago, long_ago))
        return source

    try:
        done_with, queued_for, running_for = await upload("a.mp4"), await upload("b.mp4"), await upload("c.mp4")
        fresh = await upload("d.mp4", old=False)
        alices = await upload("e.mp4", owner="alice")  # in alice's folder (storage/keys.py)
        for source, status, owner in (
            (done_with, S.COMPLETED, None),
            (queued_for, S.QUEUED, None),
            (running_for, S.PROCESSING, None),
            (alices, S.QUEUED, "alice"),
        ):
            await store.create(
                Job(method_name=Method.COMPRESS, source=source, output_format="mp4", status=status, owner=owner)
            )
        sweeper = RetentionSweeper(settings, store, storage)
        assert await sweeper.sweep_uploads() == 1
        owners = {alices: "alice"}
        remaining = {
            source
            for source in (done_with, queued_for, running_for, fresh, alices)
            if await storage.exists(parse_source(source, settings, storage, owners.get(source)).key)
        }
        assert remaining == {queued_for, running_for, fresh, alices}, "only the old upload no unfinished job needs"
        assert not (tmp_path / "storage" / "uploads" / done_with.split("/")[2]).exists(), "its folder too"
        assert await sweeper.sweep_uploads() == 0
    finally:
        await store.close()
        await storage.close()


@pytest.mark.parametrize("output_prefix", ["processed", ""])
async def test_retention_removes_old_files_whose_job_is_gone(tmp_path, output_prefix):
    """Orphans: a process died between removing a job's record and its files."""
    settings = make_settings(tmp_path, JOB_RETENTION_HOURS=24, OUTPUT_PREFIX=output_prefix)
    store, storage = await open_store(settings), await open_storage(settings)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"an output")
    long_ago = (utcnow() - timedelta(hours=30)).timestamp()
    base = f"{output_prefix}/" if output_prefix else ""

    async def stored(key: str, old: bool = True) -> str:
        await storage.put_file(key, clip, "video/mp4")
        if old:
            os.utime(storage.root / key, (long_ago, long_ago))
        return key

    try:
        kept_job = Job(method_name=Method.COMPRESS, source="clip.mp4", output_format="mp4", status=S.COMPLETED)
        await store.create(kept_job)
        gone = str(uuid.uuid4())
        orphans = {await stored(f"{base}{gone}/clip_compress.mp4"), await stored(f"{base}{gone}/ffmpeg.log")}
        kept = {
            await stored(f"{base}{kept_job.job_id}/clip_compress.mp4"),  # its job still exists
            await stored(f"{base}{uuid.uuid4()}/new.mp4", old=False),  # too recent to judge
            await stored(upload_source("upload.mp4", None)[1]),  # an upload, not an output, whatever OUTPUT_PREFIX is
        }
        sweeper = RetentionSweeper(settings, store, storage)
        assert await sweeper.sweep_orphans() == 2
        assert not any([await storage.exists(key) for key in orphans])
        assert all([await storage.exists(key) for key in kept])
    finally:
        await store.close()
        await storage.close()


async def test_retention_is_off_by_default(tmp_path):
    settings = make_settings(tmp_path)
    assert settings.JOB_RETENTION_HOURS == 0
    sweeper = RetentionSweeper(settings, None, None)  # never touches a backend when off
    sweeper.start()
    assert not sweeper.running


async def test_cancel_or_retry_of_a_job_removed_meanwhile_is_a_404_not_a_500(tmp_path):
    """The route read the job, then another request removed it before the service acted on it."""
    from mediaflow.api.errors import STATUS_FOR_ERROR
    from mediaflow.jobs.service import JobGoneError

    settings = make_settings(tmp_path)
    (tmp_path / "media" / "clip.mp4").write_bytes(b"never decoded: no worker runs")
    async with running_app(settings, api_workers=0) as client:
        job_id = (await client.post("/process", json={"source": "clip.mp4", "method_name": "resize"})).json()["job_id"]
        assert (await client.post(f"/jobs/{job_id}/cancel")).status_code == 200
        jobs, store = client.app.state.jobs, client.app.state.store
        canceled = await store.get(job_id)  # what a concurrent retry's route has read ...
        queued = canceled.model_copy(update={"status": S.QUEUED})  # ... and a concurrent cancel's
        assert (await client.delete(f"/jobs/{job_id}")).status_code == 204  # ... before this removed it
        for action, stale in ((jobs.retry, canceled), (jobs.cancel, queued)):
            with pytest.raises(JobGoneError, match="not found"):
                await action(stale)
        assert STATUS_FOR_ERROR[JobGoneError] == 404
