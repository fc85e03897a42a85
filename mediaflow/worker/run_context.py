"""The typed state of one run, handed to every step: `WorkerServices` (what a worker holds for all its
runs) and `RunContext` (one attempt at one claimed record, job or task: its work dir, progress, the
fields waiting for the next lease renewal, why it was stopped), with the storage helpers each step uses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from mediaflow.jobs import lifecycle
from mediaflow.jobs.events import JobEvents
from mediaflow.jobs.model import Job, Phase
from mediaflow.jobs.progress import RunProgress
from mediaflow.logs import get_logger
from mediaflow.observability import tracing
from mediaflow.queue import JobQueue
from mediaflow.settings import Settings
from mediaflow.storage import Storage, StorageError
from mediaflow.storage.keys import log_key
from mediaflow.store import JobStore
from mediaflow.worker.outcomes import Stop
from mediaflow.worker.server_paths import ServerPaths

log = get_logger("worker")

T = TypeVar("T")

# The tracing span of each phase a run goes through (download/probe/encode/upload).
_PHASE_SPANS = {
    Phase.DOWNLOADING: "job.download",
    Phase.PROBING: "job.probe",
    Phase.ENCODING: "job.encode",
    Phase.UPLOADING: "job.upload",
}


@dataclass(frozen=True)
class WorkerServices:
    """What one worker slot uses for every run: its settings, the ports, and its own id."""

    settings: Settings
    store: JobStore
    queue: JobQueue
    storage: Storage
    events: JobEvents
    worker_id: str


@dataclass
class RunContext:
    """One attempt at one claimed record (a job or a task), as every step of its run sees it."""

    services: WorkerServices
    job: Job
    workdir: Path
    paths: ServerPaths  # scrubs the work dir and source roots from what the user sees
    phases: tracing.PhaseSpans  # the download/probe/encode/upload spans (no-ops when tracing is off)
    storage: Storage  # the run's storage: the worker's, or a view of the job's `destination`
    progress: RunProgress = field(default_factory=RunProgress)
    started: float = field(default_factory=time.monotonic)
    log_file: Path | None = None  # ffmpeg's log in the work dir, once ffmpeg ran
    encode_speed: float | None = None  # ffmpeg's final speed (the upload phase clears progress.speed)
    announced_progress: int = 0  # the last progress told to listeners (for milestones)
    stop: Stop | None = None  # set once, by whoever stopped the run (lease keeper, shutdown)
    pending: dict[str, object] = field(default_factory=dict)  # record fields for the next lease renewal
    work: asyncio.Task | None = None  # the running work, which `halt` cancels

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def store(self) -> JobStore:
        return self.services.store

    def enter(self, phase: Phase) -> None:
        """Move the run to `phase`: progress (written with the next renewal) and its tracing span."""
        self.progress.enter(phase)
        if phase in _PHASE_SPANS:
            self.phases.enter(_PHASE_SPANS[phase])

    def record(self, **changes: object) -> None:
        """Have the lease keeper write these fields with its next renewal (a job's output states)."""
        self.pending.update(changes)
        self.progress.dirty = True

    def take_pending(self) -> dict[str, object]:
        pending, self.pending = self.pending, {}
        return pending

    def halt(self, stop: Stop) -> None:
        """Stop the work (run_ffmpeg kills ffmpeg's whole process group on cancellation); the first
        stop wins, so a shutdown during a lease loss still settles as the lease loss."""
        if self.work is not None and not self.work.done() and self.stop is None:
            self.stop = stop
            self.work.cancel()

    async def flush(self) -> Job | None:
        """Write progress and the pending fields now, conditional on the lease like every renewal;
        None when the lease is lost."""
        return await lifecycle.renew(
            self.store,
            self.job.job_id,
            self.services.worker_id,
            self.settings.LEASE_SECONDS,
            **self.progress.as_changes(),
            **self.take_pending(),
        )

    async def with_retries(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        return await with_storage_retries(self.settings.STORAGE_RETRIES, operation, what)

    async def store_log(self) -> str:
        """Store the run's ffmpeg log (server paths scrubbed) at the record's log key; returns its location."""
        if self.log_file is None:
            raise ValueError("the run has no ffmpeg log to store")
        log_file = self.log_file
        shown = await asyncio.to_thread(self.paths.scrub_file, log_file, log_file.with_name("ffmpeg.public.log"))
        key = log_key(self.settings, self.job.job_id, self.job.parent_id)
        location = await self.with_retries(lambda: self.storage.put_file(key, shown, "text/plain"), "store ffmpeg log")
        self.job.log_path = location
        return location

    async def store_log_quietly(self) -> None:
        """A failed job keeps its ffmpeg log when there is one; failing to store it changes nothing."""
        if self.job.log_path is None and self.log_file is not None and self.log_file.exists():
            try:
                await self.store_log()
            except Exception:
                log.exception("job.log_not_stored")


async def with_storage_retries(retries: int, operation: Callable[[], Awaitable[T]], what: str) -> T:
    """Retry transient storage failures with exponential backoff (1 s, 2 s, 4 s, ...), `retries` times
    (STORAGE_RETRIES); a failure the storage calls permanent is raised at once."""
    attempt = 0
    while True:
        try:
            return await operation()
        except StorageError as exc:
            if not exc.transient or attempt >= retries:
                raise
            log.warning("storage.retry", what=what, attempt=attempt + 1, error=str(exc))
            await asyncio.sleep(2**attempt)
            attempt += 1
