"""One claimed job's run inside a worker: fetch the source, probe and check it, run ffmpeg, store the
output and the log, and settle the job's state, while a lease keeper renews the lease, writes
progress (throttled) and stops ffmpeg when the lease is lost or a time limit is hit.

`worker.py` owns the loop around it (receiving, claiming, shutdown); this module owns what happens
between a successful claim and the job's next state.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from mediaflow.jobs import lifecycle
from mediaflow.jobs.events import EventType, FailureReason, JobEvent, JobEvents, crossed_milestone
from mediaflow.jobs.model import Job, Phase
from mediaflow.jobs.progress import RunProgress
from mediaflow.logs import get_logger
from mediaflow.media import ffmpeg
from mediaflow.media.errors import FfmpegError, InvalidFormatError, ProbeError
from mediaflow.media.inputs import ffmpeg_binary
from mediaflow.media.limits import DecodeLimits
from mediaflow.media.operations import build_argv, resolve_output_format
from mediaflow.media.policy import check_input, check_output
from mediaflow.media.probe import probe
from mediaflow.media.sources import SourceError, fetch_source, parse_source, redacted
from mediaflow.observability import tracing
from mediaflow.queue import JobQueue
from mediaflow.settings import Settings
from mediaflow.storage import PermanentStorageError, Storage, StorageError
from mediaflow.storage.keys import log_key, output_key
from mediaflow.store import JobStore
from mediaflow.worker.fanout_run import HandedToTasks, run_job_outputs
from mediaflow.worker.server_paths import ServerPaths
from mediaflow.worker.tasks_run import execute_task

log = get_logger("worker")


# Failures that running the job again cannot fix: the job fails at once with the message. A storage
# request the server refused as such (S3 400 InvalidRequest, 403) gets the same answer every time.
PERMANENT_ERRORS = (SourceError, FfmpegError, InvalidFormatError, PermanentStorageError)


def failure_class(exc: BaseException) -> FailureReason:
    """The bounded reason class of a permanent failure (for metrics; the message stays on the job)."""
    if isinstance(exc, (SourceError, InvalidFormatError, ProbeError)):
        return FailureReason.INVALID_INPUT
    if isinstance(exc, FfmpegError):
        return FailureReason.FFMPEG
    return FailureReason.OTHER


WORKDIR_PREFIX = "mediaflow-w"


def remove_dead_workers_dirs(parent: Path) -> None:
    """Remove `mediaflow-w<pid>-…` temp dirs whose worker process is gone (SIGKILL, OOM, crash):
    a killed worker cannot clean up, and its source copy and partial output can be large."""
    for path in parent.glob(f"{WORKDIR_PREFIX}*-*"):
        pid = path.name[len(WORKDIR_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists() and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            log.info("workdir.removed", path=str(path), reason=f"worker {pid} is gone")


@dataclass
class Run:
    """One attempt at one job, as the lease keeper sees it."""

    job: Job
    progress: RunProgress
    started: float
    abort_reason: str | None = None  # set by the keeper before it cancels the run
    abort_class: FailureReason = FailureReason.OTHER
    release: bool = False  # give the job back to the queue instead of failing it
    announced_progress: int = 0  # the last progress told to listeners (for milestones)
    log_file: Path | None = None  # ffmpeg's log in the work dir, once ffmpeg started
    paths: ServerPaths | None = None  # scrubs the work dir and source roots from what the user sees
    encode_speed: float | None = None  # ffmpeg's final speed, kept for metrics (the upload phase clears progress.speed)
    execute: asyncio.Task | None = None
    phases: tracing.PhaseSpans | None = None  # the download/probe/encode/upload spans, when tracing is on
    pending: dict = field(default_factory=dict)  # record fields to write with the next lease renewal

    def record(self, **changes: object) -> None:
        """Have the lease keeper write these fields with its next renewal (a multi-output job's states)."""
        self.pending.update(changes)
        self.progress.dirty = True

    def take_pending(self) -> dict:
        pending, self.pending = self.pending, {}
        return pending

    def abort(self, reason: str, *, release: bool = False, reason_class: FailureReason = FailureReason.OTHER) -> None:
        """Stop the run (run_ffmpeg kills ffmpeg's whole process group on cancellation)."""
        if self.execute is not None and not self.execute.done() and self.abort_reason is None:
            self.abort_reason, self.release, self.abort_class = reason, release, reason_class
            self.execute.cancel()


class JobRunner:
    """Runs one claimed job at a time for a worker: fetch, probe, ffmpeg, store, settle, while a
    lease keeper renews the lease, writes progress and enforces the time limits."""

    def __init__(
        self, settings: Settings, store: JobStore, queue: JobQueue, storage: Storage, worker_id: str, events: JobEvents
    ) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue
        self.storage = storage
        self.worker_id = worker_id
        self.events = events
        self.current: Run | None = None  # the run in progress, if any

    async def process(self, job: Job) -> None:
        with (
            structlog.contextvars.bound_contextvars(job_id=job.job_id, attempt=job.attempts),
            tracing.span(
                "job.run",
                job.traceparent,
                {tracing.TRACED_JOB_ATTRIBUTE: job.job_id, "mediaflow.attempt": job.attempts},
            ),
        ):
            run = Run(job=job, progress=RunProgress(), started=time.monotonic(), phases=tracing.PhaseSpans(job.job_id))
            self.current = run
            log.info("job.claimed", method=job.label, source=redacted(job.source))
            # The worker's PID in the name lets other workers remove it if this process is killed.
            workdir = Path(
                tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-{job.job_id[:8]}-", dir=self.settings.WORK_DIR)
            )
            run.paths = ServerPaths(self.settings, workdir)
            execute = run.execute = asyncio.create_task(self._execute(run, workdir))
            keeper = asyncio.create_task(self._keep_lease(run, execute))
            try:
                await self._settle(run, execute)
            finally:
                run.phases.end(
                    run.abort_reason
                    or (
                        None
                        if execute.cancelled() or not execute.done() or execute.exception() is None
                        else str(execute.exception())
                    )
                )
                keeper.cancel()
                await asyncio.gather(keeper, return_exceptions=True)
                shutil.rmtree(workdir, ignore_errors=True)
                self.current = None

    async def _settle(self, run: Run, execute: asyncio.Task) -> None:
        """Turn the run's outcome into the job's next state."""
        job = run.job
        try:
            output_path, log_path = await execute
        except asyncio.CancelledError:
            if run.abort_reason is None:  # we ourselves are being cancelled
                raise
            await self._abort(run)
            return
        except HandedToTasks as handed:
            await self._hand_to_tasks(run, handed.queued)
            return
        except PERMANENT_ERRORS as exc:
            await self._store_log_quietly(run)
            await lifecycle.fail(
                self.store,
                job,
                self.worker_id,
                run.paths.scrub(str(exc)),
                run.job.log_path,
                events=self.events,
                reason=failure_class(exc),
            )
            log.warning("job.failed", error=str(exc))
            return
        except Exception as exc:  # storage/network trouble or a bug: let another attempt try
            reason = f"{type(exc).__name__}: {exc}"
            log.exception("job.error", error=reason)
            await lifecycle.release(
                self.store,
                job.job_id,
                self.worker_id,
                reason=f"attempt {job.attempts} failed: {run.paths.scrub(reason)}",
                events=self.events,
            )
            await self.queue.publish(job.job_id)
            return
        finished = await lifecycle.complete(
            self.store, job, self.worker_id, output_path, log_path, events=self.events, speed=run.encode_speed
        )
        if finished is None:
            log.warning("job.lease_lost_before_completion")
        else:
            log.info("job.completed", output=output_path, seconds=round(time.monotonic() - run.started, 2))

    async def _hand_to_tasks(self, run: Run, queued: list[str]) -> None:
        """The job's work is out in tasks: mark it awaiting them (no worker, a lease as long as
        JOB_TIMEOUT_S, renewed by every settled task) before publishing them, so the reaper leaves it
        alone and the worker settling the last task finds it to take back."""
        held = await lifecycle.hand_to_tasks(
            self.store,
            run.job.job_id,
            self.worker_id,
            self.settings.JOB_TIMEOUT_S,
            **run.progress.as_changes(),
            **run.take_pending(),
        )
        if held is None:
            log.warning("job.lease_lost_before_tasks")  # canceled meanwhile: the cancel took the tasks too
            return
        for task_id in queued:
            await self.queue.publish(task_id)
        log.info("job.handed_to_tasks", published=len(queued))

    async def _abort(self, run: Run) -> None:
        job = run.job
        if run.abort_reason == "lease lost":
            log.warning("job.lease_lost", reason="canceled or taken over; ffmpeg stopped")
            return
        if run.release:
            if await lifecycle.release(
                self.store, job.job_id, self.worker_id, reason=run.abort_reason, events=self.events
            ):
                await self.queue.publish(job.job_id)
            log.info("job.released", reason=run.abort_reason)
            return
        await self._store_log_quietly(run)
        await lifecycle.fail(
            self.store,
            job,
            self.worker_id,
            run.abort_reason,
            run.job.log_path,
            events=self.events,
            reason=run.abort_class,
        )
        log.warning("job.failed", error=run.abort_reason)

    async def _execute(self, run: Run, workdir: Path) -> tuple[str, str]:
        if run.job.is_task:
            return await execute_task(self, run, workdir)
        if run.job.has_outputs:
            return await run_job_outputs(self, run, workdir)
        job, settings, progress = run.job, self.settings, run.progress
        fmt = resolve_output_format(job.method_name, job.output_format)
        source = parse_source(job.source, settings, self.storage, job.owner)

        progress.enter(Phase.DOWNLOADING)
        run.phases.enter("job.download")
        input_path = await self.with_retries(
            lambda: fetch_source(source, workdir, self.storage, settings, progress.transfer), "fetch source"
        )

        progress.enter(Phase.PROBING)
        run.phases.enter("job.probe")
        info = await probe(input_path, settings)
        check_input(info, job.method_name, settings)

        progress.enter(Phase.ENCODING)
        run.phases.enter("job.encode")
        output_name = f"{Path(source.name).stem or 'output'}_{job.method_name.value}.{fmt.extension}"
        output_file = workdir / output_name
        run.log_file = workdir / "ffmpeg.log"
        limits = DecodeLimits.from_settings(settings)
        argv = build_argv(
            ffmpeg_binary(settings),
            job.method_name,
            input_path,
            output_file,
            fmt,
            threads=settings.FFMPEG_THREADS,
            input_options=limits.input_options(),
        )

        async def on_progress(update: ffmpeg.ProgressUpdate) -> None:
            progress.encoding(update.out_time_s, info.duration, update.speed)

        log.info("ffmpeg.started", duration_s=info.duration)
        result = await ffmpeg.run_ffmpeg(
            argv,
            log_path=run.log_file,
            on_progress=on_progress,
            stop_when=limits.breach,
            max_memory_bytes=limits.memory_bytes,
        )
        run.encode_speed = progress.speed
        # The log goes up while the output is checked and uploaded: on S3 that is one round trip less
        # per job. A failure below still waits for it, so a failed job keeps its log.
        log_upload = asyncio.create_task(self.store_log(run))
        try:
            if (limit_error := limits.explain_failure(result.returncode, result.log)) is not None:
                raise limit_error
            ffmpeg.check(result)
            output_info = await probe(output_file, settings)
            limits.check_decoded_duration(output_info.duration)
            check_output(output_info, info)

            progress.enter(Phase.UPLOADING)
            run.phases.enter("job.upload")
            key = output_key(settings, job.job_id, output_name)
            output_location = await self.with_retries(
                lambda: self.storage.put_file(key, output_file, fmt.mime_type, progress.transfer), "store output"
            )
        except BaseException:
            await asyncio.gather(log_upload, return_exceptions=True)
            raise
        return output_location, await log_upload

    async def flush(self, run: Run) -> None:
        """Write the pending record fields now (conditional on the lease, like every renewal)."""
        await lifecycle.renew(
            self.store,
            run.job.job_id,
            self.worker_id,
            self.settings.LEASE_SECONDS,
            **run.progress.as_changes(),
            **run.take_pending(),
        )

    async def store_log(self, run: Run) -> str:
        shown = await asyncio.to_thread(run.paths.scrub_file, run.log_file, run.log_file.with_name("ffmpeg.public.log"))
        location = await self.with_retries(
            lambda: self.storage.put_file(
                log_key(self.settings, run.job.job_id, run.job.parent_id), shown, "text/plain"
            ),
            "store ffmpeg log",
        )
        run.job.log_path = location
        return location

    async def _store_log_quietly(self, run: Run) -> None:
        """A failed job keeps its ffmpeg log when there is one; failing to store it changes nothing."""
        if run.job.log_path is None and run.log_file is not None and run.log_file.exists():
            try:
                await self.store_log(run)
            except Exception:
                log.exception("job.log_not_stored")

    async def with_retries(self, operation, what: str):
        """Retry transient storage failures with exponential backoff (1 s, 2 s, 4 s, ...)."""
        for attempt in range(self.settings.STORAGE_RETRIES + 1):
            try:
                return await operation()
            except StorageError as exc:
                if not exc.transient or attempt == self.settings.STORAGE_RETRIES:
                    raise
                log.warning("storage.retry", what=what, attempt=attempt + 1, error=str(exc))
                await asyncio.sleep(2**attempt)

    async def _keep_lease(self, run: Run, execute: asyncio.Task) -> None:
        """Renew the lease, write progress (at most every PROGRESS_WRITE_INTERVAL_S), and stop the
        run when the lease is lost or a time limit is hit."""
        settings = self.settings
        renew_every = settings.LEASE_SECONDS / 3
        tick = min(max(settings.PROGRESS_WRITE_INTERVAL_S, 0.2), renew_every)
        last_write = time.monotonic()
        while not execute.done():
            await asyncio.sleep(tick)
            now = time.monotonic()
            reason, reason_class = self.time_limit_reason(run, now)
            if reason is None and (run.progress.dirty or now - last_write >= renew_every):
                run.progress.dirty = False
                try:
                    renewed = await lifecycle.renew(
                        self.store,
                        run.job.job_id,
                        self.worker_id,
                        settings.LEASE_SECONDS,
                        **run.progress.as_changes(),
                        **run.take_pending(),
                    )
                except Exception as exc:
                    # The store is away for a moment: keep encoding and renew at the next tick. If it
                    # stays away past the lease, the renewal that finally applies (or not) decides.
                    log.warning("lease.renew_failed", error=f"{type(exc).__name__}: {exc}")
                    continue
                last_write = now
                if renewed is None:
                    reason = "lease lost"
                else:
                    self._announce_milestone(run, renewed)
            if reason is not None:
                run.abort(reason, reason_class=reason_class)
                return

    def _announce_milestone(self, run: Run, job: Job) -> None:
        if crossed_milestone(run.announced_progress, job.progress) is not None:
            self.events.emit(JobEvent(EventType.PROGRESS, job))
        run.announced_progress = job.progress

    def time_limit_reason(self, run: Run, now: float) -> tuple[str | None, FailureReason]:
        settings = self.settings
        if now - run.started > settings.JOB_TIMEOUT_S:
            return (
                f"job exceeded its time limit of {settings.JOB_TIMEOUT_S:.0f} s (JOB_TIMEOUT_S)",
                FailureReason.TIME_LIMIT,
            )
        if run.progress.phase is Phase.ENCODING and now - run.progress.last_advance > settings.STALL_TIMEOUT_S:
            return (
                f"ffmpeg made no progress for {settings.STALL_TIMEOUT_S:.0f} s (STALL_TIMEOUT_S)",
                FailureReason.STALLED,
            )
        return None, FailureReason.OTHER
