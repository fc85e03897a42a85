"""The lease reaper: re-queues jobs whose worker died (its lease expired) and removes the temp dirs a
killed worker on this machine left behind. Any process that hosts workers runs one; several reapers
at once are safe, since each re-queue is a conditional update on the version read."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mediaflow.jobs import lifecycle
from mediaflow.jobs.events import JobEvents
from mediaflow.logs import get_logger
from mediaflow.queue import JobQueue
from mediaflow.settings import Settings
from mediaflow.store import JobStore
from mediaflow.sweeper import Sweeper
from mediaflow.worker.job_run import remove_dead_workers_dirs

log = get_logger("worker")


class LeaseReaper(Sweeper):
    name = "reaper"

    def __init__(self, settings: Settings, store: JobStore, queue: JobQueue, events: JobEvents) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue
        self.events = events
        super().__init__()

    def interval_s(self) -> float:
        return max(self.settings.LEASE_SECONDS / 2, 0.5)

    async def sweep_once(self) -> None:
        for job in await lifecycle.requeue_expired(self.store, self.settings.MAX_ATTEMPTS, events=self.events):
            log.warning("job.requeued", job_id=job.job_id, reason=job.error)
            await self.queue.publish(job.job_id)
        remove_dead_workers_dirs(Path(self.settings.WORK_DIR or tempfile.gettempdir()))
