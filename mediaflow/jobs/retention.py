"""Removing finished jobs: `DELETE /jobs/{id}` and the retention sweeper (`JOB_RETENTION_HOURS`).

A job is removed only while it is final (completed, failed, canceled) and unchanged since it was
read: the store deletes the record conditionally, so a job retried meanwhile is never removed under
its new run. The record goes first, then its output and ffmpeg log: a process that dies in between
leaves orphan files (under OUTPUT_PREFIX/<job_id>/; the retention sweeper removes them later), never
a record pointing at files that are gone.
Uploads are swept on their own clock: one upload can feed several jobs, so an upload goes once it is
older than JOB_RETENTION_HOURS and no queued or running job needs it (a failed job retried later
then fails with "source not found").
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timedelta

from mediaflow.jobs.model import FINAL_STATUSES, Job, JobStatus, utcnow
from mediaflow.logs import get_logger
from mediaflow.media.sources import upload_key_of
from mediaflow.settings import Settings
from mediaflow.storage import Storage, StorageError
from mediaflow.storage.keys import UPLOAD_PREFIX, output_dir_prefix, output_key, task_key
from mediaflow.store import Expect, JobStore
from mediaflow.sweeper import Sweeper

log = get_logger("retention")

PAGE = 100
MAX_PER_SWEEP = 1000  # a backlog is worked off over several sweeps, without one long burst of writes
_JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MAX_UNFINISHED = 10_000  # beyond this many queued/processing jobs, uploads wait for a calmer sweep


async def remove_job(store: JobStore, storage: Storage, job: Job, settings: Settings) -> bool:
    """Delete a final job's record, then its output and log. False if the job changed since `job`
    was read (or is gone): nothing is removed then."""
    if not await store.delete(job.job_id, Expect(status=FINAL_STATUSES, version=job.version)):
        return False
    for task in await store.list_tasks(job.job_id):  # a chunked job's task records go with it
        await store.delete(task.job_id)
    keys = {key for location in (job.output_path, job.log_path) if location and (key := storage.key_for(location))}
    if job.has_outputs:  # a POST /jobs job: every file in its folder (its log's, and today's OUTPUT_PREFIX's)
        log_key = storage.key_for(job.log_path) if job.log_path else None
        # A job canceled before it wrote a log still may have a `.tasks/` folder (chunked encoding's pieces).
        folders = {output_key(settings, job.job_id, "")} | ({log_key.rsplit("/", 1)[0] + "/"} if log_key else set())
        for folder in sorted(folders):
            keys |= set(await storage.list_keys(folder, utcnow() + timedelta(days=1), 1_000_000))
    await delete_files(storage, sorted(keys), job_id=job.job_id)
    log.info("job.removed", job_id=job.job_id, status=job.status.value)
    return True


async def delete_files(storage: Storage, keys: list[str], **context: str) -> int:
    """Delete each key; one that fails is logged and left (the caller's record is gone or never was:
    a leftover file is the lesser harm, and the next retention sweep tries again). Returns how many."""
    removed = 0
    for key in keys:
        try:
            await storage.delete(key)
            removed += 1
        except StorageError as exc:
            log.warning("retention.file_not_removed", key=key, error=str(exc), **context)
    return removed


async def remove_tasks_folder(settings: Settings, storage: Storage, job_id: str) -> int:
    """Remove a job's `.tasks/` folder: chunked encoding's split pieces and encoded chunks, which only
    its tasks and its join need. For a canceled or failed job nobody else ever removes them (no worker
    takes the job back to join). A storage failure only logs: the files go with the job at the latest."""
    folder = task_key(settings, job_id, "")
    try:
        keys = await storage.list_keys(folder, utcnow() + timedelta(days=1), 1_000_000)
    except StorageError as exc:
        log.warning("retention.task_files_not_listed", job_id=job_id, error=str(exc))
        return 0
    removed = await delete_files(storage, keys, job_id=job_id)
    if removed:
        log.info("job.task_files_removed", job_id=job_id, files=removed)
    return removed


def expired(job: Job, cutoff: datetime) -> bool:
    """Finished before `cutoff`, and no final webhook still waiting to be delivered."""
    return job.completed_at is not None and job.completed_at < cutoff and job.webhook_event_id is None


class RetentionSweeper(Sweeper):
    """Every RETENTION_SWEEP_INTERVAL_S, removes jobs that finished more than JOB_RETENTION_HOURS ago."""

    def __init__(self, settings: Settings, store: JobStore, storage: Storage) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        super().__init__()

    name = "retention"

    def interval_s(self) -> float:
        return self.settings.RETENTION_SWEEP_INTERVAL_S

    @property
    def enabled(self) -> bool:
        return self.settings.JOB_RETENTION_HOURS > 0

    async def sweep_once(self) -> None:
        removed, uploads, orphans = await self.sweep(), await self.sweep_uploads(), await self.sweep_orphans()
        if removed or uploads or orphans:
            log.info(
                "retention.swept",
                jobs=removed,
                uploads=uploads,
                orphan_files=orphans,
                retention_hours=self.settings.JOB_RETENTION_HOURS,
            )

    async def sweep(self, now: datetime | None = None) -> int:
        """One pass; returns how many jobs were removed. Walks each final status oldest first (the
        listing indexes every store has) and stops at the first job created after the cutoff: a job
        cannot finish before it was created."""
        cutoff = self._cutoff(now)
        removed = 0
        for status in sorted(FINAL_STATUSES):
            kept = 0  # jobs before the cutoff that stay (finished later, or a webhook pending): paged over
            while removed < MAX_PER_SWEEP:
                page = await self.store.list(limit=PAGE, skip=kept, status=status, oldest_first=True)
                for job in page:
                    if job.created_at >= cutoff:
                        page = []  # everything after is newer still
                        break
                    if expired(job, cutoff) and await remove_job(self.store, self.storage, job, self.settings):
                        removed += 1
                    else:
                        kept += 1
                if len(page) < PAGE:
                    break
        return removed

    async def sweep_uploads(self, now: datetime | None = None) -> int:
        """Remove uploads older than the cutoff that no queued or processing job uses; returns how many."""
        cutoff = self._cutoff(now)
        old_keys = await self.storage.list_keys(UPLOAD_PREFIX, cutoff, limit=MAX_PER_SWEEP)
        if not old_keys:
            return 0
        in_use = await self._uploads_of_unfinished_jobs()
        if in_use is None:
            log.warning("retention.uploads_skipped", reason=f"more than {MAX_UNFINISHED} queued or processing jobs")
            return 0
        return await delete_files(self.storage, [key for key in old_keys if key not in in_use])

    async def sweep_orphans(self, now: datetime | None = None) -> int:
        """Remove outputs and logs older than the cutoff whose job record is gone (a process died
        between removing a record and its files); returns how many files."""
        cutoff = self._cutoff(now)
        prefix = output_dir_prefix(self.settings)
        by_job: dict[str, list[str]] = defaultdict(list)
        for key in await self.storage.list_keys(prefix, cutoff, limit=MAX_PER_SWEEP):
            job_id = key.removeprefix(prefix).split("/", 1)[0]
            if _JOB_ID.fullmatch(job_id):  # never anything else (uploads/ shares the root when OUTPUT_PREFIX is empty)
                by_job[job_id].append(key)
        removed = 0
        for job_id, keys in by_job.items():
            if await self.store.get(job_id) is None:
                removed += await delete_files(self.storage, keys, job_id=job_id)
        return removed

    def _cutoff(self, now: datetime | None) -> datetime:
        return (now or utcnow()) - timedelta(hours=self.settings.JOB_RETENTION_HOURS)

    async def _uploads_of_unfinished_jobs(self) -> set[str | None] | None:
        """Storage keys of the uploads every queued or processing job reads (the key depends on the
        job's owner: storage/keys.py); None if there are too many jobs to be sure."""
        sources: set[str | None] = set()
        for status in (JobStatus.QUEUED, JobStatus.PROCESSING):
            for skip in range(0, MAX_UNFINISHED, PAGE):
                page = await self.store.list(limit=PAGE, skip=skip, status=status)
                sources.update(upload_key_of(job.source, job.owner) for job in page)
                if len(page) < PAGE:
                    break
            else:
                return None
        return sources
