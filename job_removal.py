"""Removing finished jobs: `DELETE /jobs/{id}` and the retention sweeper (`JOB_RETENTION_HOURS`).

A job is removed only while it is final (completed, failed, canceled) and unchanged since it was
read: the store deletes the record conditionally, so a job retried meanwhile is never removed under
its new run. The record goes first, then its output and ffmpeg log: a process that dies in between
leaves orphan files (under OUTPUT_PREFIX/<job_id>/), never a record pointing at files that are gone.
Uploaded sources are not removed here: one upload can feed several jobs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from db import Expect, JobStore
from logs import get_logger
from periodic import Periodic
from schema import FINAL_STATUSES, Job, utcnow
from settings import Settings
from storage import Storage, StorageError

log = get_logger("retention")

PAGE = 100
MAX_PER_SWEEP = 1000  # a backlog is worked off over several sweeps, without one long burst of writes


async def remove_job(store: JobStore, storage: Storage, job: Job) -> bool:
    """Delete a final job's record, then its output and log. False if the job changed since `job`
    was read (or is gone): nothing is removed then."""
    if not await store.delete(job.job_id, Expect(status=FINAL_STATUSES, version=job.version)):
        return False
    for location in (job.output_path, job.log_path):
        key = storage.key_for(location) if location else None
        if key is None:
            continue
        try:
            await storage.delete(key)
        except StorageError as exc:  # the record is gone: an orphan file is the lesser harm
            log.warning("job.file_not_removed", job_id=job.job_id, location=location, error=str(exc))
    log.info("job.removed", job_id=job.job_id, status=job.status.value)
    return True


def expired(job: Job, cutoff: datetime) -> bool:
    """Finished before `cutoff`, and no final webhook still waiting to be delivered."""
    return job.completed_at is not None and job.completed_at < cutoff and job.webhook_event_id is None


class RetentionSweeper:
    """Every RETENTION_SWEEP_INTERVAL_S, removes jobs that finished more than JOB_RETENTION_HOURS ago."""

    def __init__(self, settings: Settings, store: JobStore, storage: Storage) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self._loop = Periodic("retention", lambda: settings.RETENTION_SWEEP_INTERVAL_S, self._sweep_and_log)

    @property
    def running(self) -> bool:
        return self._loop.running

    def start(self) -> None:
        if self.settings.JOB_RETENTION_HOURS > 0:
            self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _sweep_and_log(self) -> None:
        if removed := await self.sweep():
            log.info("retention.swept", removed=removed, retention_hours=self.settings.JOB_RETENTION_HOURS)

    async def sweep(self, now: datetime | None = None) -> int:
        """One pass; returns how many jobs were removed. Walks each final status oldest first (the
        listing indexes every store has) and stops at the first job created after the cutoff: a job
        cannot finish before it was created."""
        cutoff = (now or utcnow()) - timedelta(hours=self.settings.JOB_RETENTION_HOURS)
        removed = 0
        for status in sorted(FINAL_STATUSES):
            kept = 0  # jobs before the cutoff that stay (finished later, or a webhook pending): paged over
            while removed < MAX_PER_SWEEP:
                page = await self.store.list(limit=PAGE, skip=kept, status=status, oldest_first=True)
                for job in page:
                    if job.created_at >= cutoff:
                        page = []  # everything after is newer still
                        break
                    if expired(job, cutoff) and await remove_job(self.store, self.storage, job):
                        removed += 1
                    else:
                        kept += 1
                if len(page) < PAGE:
                    break
        return removed
