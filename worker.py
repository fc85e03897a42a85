"""The MediaFlow worker. `python worker.py` runs one worker process (WORKER_CONCURRENCY jobs at a time).

One job's way through a worker:
    queue.receive() → lifecycle.claim (atomic; lost races are skipped) → delivery.ack()
    → fetch the source → probe and check it → ffmpeg with -progress → store output and log
    → lifecycle.complete (only if this worker still holds the lease)
While a job runs, a lease keeper renews the lease and writes progress (throttled); if the lease is
lost (the job was canceled, or re-queued after this worker looked dead), ffmpeg is stopped at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import structlog

import ffmpeg_ops
from probe import probe
import lifecycle
from db import JobStore, StoreUnavailableError, open_store
from events import EventType, FailureReason, JobEvent, JobEvents, crossed_milestone
from jobqueue import JobQueue, QueueError, QueueUnavailableError, open_queue
from logs import configure_logging, get_logger
from metrics import Metrics, MetricsServerError, worker_metrics_server
from media_policy import check_input, check_output
from progress import RunProgress
from schema import Job, JobStatus, Phase, utcnow
from settings import Settings
from sources import SourceError, fetch_source, parse_source
from storage import Storage, StorageError, StorageUnavailableError, open_storage
from webhooks import WebhookDispatcher

log = get_logger("worker")

# A backend that cannot be reached at start-up: say so in one line and exit, no traceback.
BACKEND_UNAVAILABLE = (StoreUnavailableError, QueueUnavailableError, StorageUnavailableError)

# Failures that running the job again cannot fix: the job fails at once with the message.
PERMANENT_ERRORS = (SourceError, ffmpeg_ops.FfmpegError, ffmpeg_ops.InvalidFormatError)


def failure_class(exc: BaseException) -> FailureReason:
    """The bounded reason class of a permanent failure (for metrics; the message stays on the job)."""
    if isinstance(exc, (SourceError, ffmpeg_ops.InvalidFormatError, ffmpeg_ops.ProbeError)):
        return FailureReason.INVALID_INPUT
    if isinstance(exc, ffmpeg_ops.FfmpegError):
        return FailureReason.FFMPEG
    return FailureReason.OTHER


WORKDIR_PREFIX = "mediaflow-w"


def remove_dead_workers_dirs(parent: Path) -> None:
    """Remove `mediaflow-w<pid>-…` temp dirs whose worker process is gone (SIGKILL, OOM, crash):
    a killed worker cannot clean up, and its source copy and partial output can be large."""
    for path in parent.glob(f"{WORKDIR_PREFIX}*-*"):
        pid = path.name[len(WORKDIR_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists() and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            log.info("workdir.removed", path=str(path), reason=f"worker {pid} is gone")


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def output_key(settings: Settings, job: Job, filename: str) -> str:
    prefix = settings.OUTPUT_PREFIX.strip("/")
    return f"{prefix}/{job.job_id}/{filename}" if prefix else f"{job.job_id}/{filename}"


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
    encode_speed: float | None = None  # ffmpeg's final speed, kept for metrics (the upload phase clears progress.speed)
    execute: asyncio.Task | None = None

    def abort(self, reason: str, *, release: bool = False, reason_class: FailureReason = FailureReason.OTHER) -> None:
        """Stop the run (run_ffmpeg kills ffmpeg's whole process group on cancellation)."""
        if self.execute is not None and not self.execute.done() and self.abort_reason is None:
            self.abort_reason, self.release, self.abort_class = reason, release, reason_class
            self.execute.cancel()


class Worker:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        queue: JobQueue,
        storage: Storage,
        worker_id: str | None = None,
        events: JobEvents | None = None,
    ):
        self.settings = settings
        self.store = store
        self.queue = queue
        self.storage = storage
        self.events = events or JobEvents()
        self.worker_id = worker_id or new_worker_id()
        self.jobs_done = 0
        self.running = False  # inside `run` (read by the metrics' worker gauges)
        self._current: asyncio.Task | None = None
        self._run: Run | None = None

    @property
    def busy(self) -> bool:
        return self._current is not None

    # --- the loop ----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, burst: bool = False) -> None:
        """Take jobs until `stop` is set (or, in burst mode, until no job is left)."""
        structlog.contextvars.bind_contextvars(worker_id=self.worker_id)
        log.info("worker.started", store=self.settings.DB_BACKEND, queue=self.settings.QUEUE_BACKEND)
        reaper = asyncio.create_task(self._reap_expired_leases(stop))
        self.running = True
        try:
            while not stop.is_set():
                job = await self._next_job(stop)
                if job is None:
                    if burst and not await self._work_left():
                        break
                    continue
                self._current = asyncio.create_task(self.process(job))
                try:
                    await self._finish_or_release_on_stop(stop)
                except Exception:
                    # The job's record could not be settled (store unreachable?): its lease will
                    # expire and the reaper re-queues it. The worker itself carries on.
                    log.exception("job.settle_failed", job_id=job.job_id)
        finally:
            self.running = False
            reaper.cancel()
            log.info("worker.stopped", jobs_done=self.jobs_done)

    async def _next_job(self, stop: asyncio.Event) -> Job | None:
        delivery = await self.queue.receive(timeout=self.settings.POLL_INTERVAL_S)
        if delivery is None:
            return await self._sweep_stale_queued()
        job = await lifecycle.claim(
            self.store, delivery.job_id, self.worker_id, self.settings.LEASE_SECONDS, self.settings.MAX_ATTEMPTS,
            events=self.events,
        )
        # Ack once the job's state is durable: claimed by us, or not claimable (taken, finished,
        # canceled, unknown). Either way this delivery needs no redelivery; the lease covers a crash.
        try:
            await delivery.ack()
        except QueueError as exc:
            # A failed commit (e.g. a rebalance in between) only means the id may come again; the
            # claim check makes a redelivery harmless.
            log.warning("queue.ack_failed", job_id=delivery.job_id, error=str(exc))
        if job is None:
            log.debug("job.skipped", job_id=delivery.job_id, reason="not queued or claimed by another worker")
        return job

    async def _sweep_stale_queued(self) -> Job | None:
        """With a broker, a queued job can wait behind a busy consumer of its partition (or its
        publish was lost); an idle worker takes it from the store after QUEUED_SWEEP_AFTER_S."""
        if self.settings.QUEUE_BACKEND == "embedded":
            return None
        oldest = await self.store.list(limit=1, status=JobStatus.QUEUED, oldest_first=True)
        if not oldest or (utcnow() - oldest[0].updated_at).total_seconds() < self.settings.QUEUED_SWEEP_AFTER_S:
            return None
        return await lifecycle.claim(
            self.store, oldest[0].job_id, self.worker_id, self.settings.LEASE_SECONDS, self.settings.MAX_ATTEMPTS,
            events=self.events,
        )

    async def _work_left(self) -> bool:
        return bool(await self.store.list(limit=1, status=JobStatus.QUEUED))

    async def _finish_or_release_on_stop(self, stop: asyncio.Event) -> None:
        """Wait for the current job; on shutdown, give it SHUTDOWN_GRACE_S, then release it."""
        current = self._current
        stop_waiter = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({current, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not current.done():
                log.info("worker.draining", grace_s=self.settings.SHUTDOWN_GRACE_S)
                await asyncio.wait({current}, timeout=self.settings.SHUTDOWN_GRACE_S)
            if not current.done() and self._run is not None:
                self._run.abort("worker shutting down", release=True)
            await current
        finally:
            stop_waiter.cancel()
            self._current = None

    async def _reap_expired_leases(self, stop: asyncio.Event) -> None:
        """Any worker may re-queue a job whose worker died; the version check makes it safe. It also
        removes the temp dirs a killed worker on this machine left behind."""
        interval = max(self.settings.LEASE_SECONDS / 2, 0.5)
        while not stop.is_set():
            try:
                for job in await lifecycle.requeue_expired(self.store, self.settings.MAX_ATTEMPTS, events=self.events):
                    log.warning("job.requeued", job_id=job.job_id, reason=job.error)
                    await self.queue.publish(job.job_id)
                remove_dead_workers_dirs(Path(self.settings.WORK_DIR or tempfile.gettempdir()))
            except Exception:  # the reaper must outlive a passing store or broker error
                log.exception("reaper.error")
            await asyncio.sleep(interval)

    # --- one job -----------------------------------------------------------------------------------

    async def process(self, job: Job) -> None:
        with structlog.contextvars.bound_contextvars(job_id=job.job_id, attempt=job.attempts):
            run = Run(job=job, progress=RunProgress(), started=time.monotonic())
            self._run = run
            log.info("job.claimed", method=job.method_name.value, source=job.source)
            # The worker's PID in the name lets other workers remove it if this process is killed.
            workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-{job.job_id[:8]}-",
                                            dir=self.settings.WORK_DIR))
            execute = run.execute = asyncio.create_task(self._execute(run, workdir))
            keeper = asyncio.create_task(self._keep_lease(run, execute))
            try:
                await self._settle(run, execute)
            finally:
                keeper.cancel()
                await asyncio.gather(keeper, return_exceptions=True)
                shutil.rmtree(workdir, ignore_errors=True)
                self._run = None
                self.jobs_done += 1

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
        except PERMANENT_ERRORS as exc:
            await self._store_log_quietly(run)
            await lifecycle.fail(self.store, job.job_id, self.worker_id, str(exc), run.job.log_path,
                                 events=self.events, reason=failure_class(exc))
            log.warning("job.failed", error=str(exc))
            return
        except Exception as exc:  # storage/network trouble or a bug: let another attempt try
            reason = f"{type(exc).__name__}: {exc}"
            log.exception("job.error", error=reason)
            await lifecycle.release(self.store, job.job_id, self.worker_id,
                                    reason=f"attempt {job.attempts} failed: {reason}", events=self.events)
            await self.queue.publish(job.job_id)
            return
        finished = await lifecycle.complete(self.store, job.job_id, self.worker_id, output_path, log_path,
                                            events=self.events, speed=run.encode_speed)
        if finished is None:
            log.warning("job.lease_lost_before_completion")
        else:
            log.info("job.completed", output=output_path, seconds=round(time.monotonic() - run.started, 2))

    async def _abort(self, run: Run) -> None:
        job = run.job
        if run.abort_reason == "lease lost":
            log.warning("job.lease_lost", reason="canceled or taken over; ffmpeg stopped")
            return
        if run.release:
            if await lifecycle.release(self.store, job.job_id, self.worker_id, reason=run.abort_reason, events=self.events):
                await self.queue.publish(job.job_id)
            log.info("job.released", reason=run.abort_reason)
            return
        await self._store_log_quietly(run)
        await lifecycle.fail(self.store, job.job_id, self.worker_id, run.abort_reason, run.job.log_path,
                             events=self.events, reason=run.abort_class)
        log.warning("job.failed", error=run.abort_reason)

    async def _execute(self, run: Run, workdir: Path) -> tuple[str, str]:
        job, settings, progress = run.job, self.settings, run.progress
        fmt = ffmpeg_ops.resolve_output_format(job.method_name, job.output_format)
        source = parse_source(job.source, settings, self.storage)

        progress.enter(Phase.DOWNLOADING)
        input_path = await self._with_retries(
            lambda: fetch_source(source, workdir, self.storage, progress.transfer), "fetch source"
        )

        progress.enter(Phase.PROBING)
        info = await probe(input_path, settings)
        check_input(info, job.method_name, settings)

        progress.enter(Phase.ENCODING)
        output_name = f"{Path(source.name).stem or 'output'}_{job.method_name.value}.{fmt.extension}"
        output_file = workdir / output_name
        run.log_file = workdir / "ffmpeg.log"
        argv = ffmpeg_ops.build_argv(
            ffmpeg_ops.ffmpeg_binary(settings), job.method_name, input_path, output_file, fmt,
            threads=settings.FFMPEG_THREADS,
        )

        async def on_progress(update: ffmpeg_ops.ProgressUpdate) -> None:
            progress.encoding(update.out_time_s, info.duration, update.speed)

        log.info("ffmpeg.started", duration_s=info.duration)
        result = await ffmpeg_ops.run_ffmpeg(argv, log_path=run.log_file, on_progress=on_progress)
        run.encode_speed = progress.speed
        log_location = await self._store_log(run)
        ffmpeg_ops.check(result)
        check_output(await probe(output_file, settings), info)

        progress.enter(Phase.UPLOADING)
        key = output_key(settings, job, output_name)
        output_location = await self._with_retries(
            lambda: self.storage.put_file(key, output_file, fmt.mime_type, progress.transfer), "store output"
        )
        return output_location, log_location

    async def _store_log(self, run: Run) -> str:
        location = await self._with_retries(
            lambda: self.storage.put_file(output_key(self.settings, run.job, "ffmpeg.log"), run.log_file, "text/plain"),
            "store ffmpeg log",
        )
        run.job.log_path = location
        return location

    async def _store_log_quietly(self, run: Run) -> None:
        """A failed job keeps its ffmpeg log when there is one; failing to store it changes nothing."""
        if run.job.log_path is None and run.log_file is not None and run.log_file.exists():
            try:
                await self._store_log(run)
            except Exception:
                log.exception("job.log_not_stored")

    async def _with_retries(self, operation, what: str):
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
            reason, reason_class = self._time_limit_reason(run, now)
            if reason is None and (run.progress.dirty or now - last_write >= renew_every):
                run.progress.dirty = False
                renewed = await lifecycle.renew(
                    self.store, run.job.job_id, self.worker_id, settings.LEASE_SECONDS, **run.progress.as_changes()
                )
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

    def _time_limit_reason(self, run: Run, now: float) -> tuple[str | None, FailureReason]:
        settings = self.settings
        if now - run.started > settings.JOB_TIMEOUT_S:
            return f"job exceeded its time limit of {settings.JOB_TIMEOUT_S:.0f} s (JOB_TIMEOUT_S)", FailureReason.TIME_LIMIT
        if run.progress.phase is Phase.ENCODING and now - run.progress.last_advance > settings.STALL_TIMEOUT_S:
            return f"ffmpeg made no progress for {settings.STALL_TIMEOUT_S:.0f} s (STALL_TIMEOUT_S)", FailureReason.STALLED
        return None, FailureReason.OTHER


# --- running workers -------------------------------------------------------------------------------


async def run_workers(
    settings: Settings,
    count: int,
    stop: asyncio.Event,
    *,
    burst: bool = False,
    store: JobStore | None = None,
    storage: Storage | None = None,
    shared_queue: JobQueue | None = None,
    events: JobEvents | None = None,
    metrics: Metrics | None = None,
) -> list[Worker]:
    """Run `count` workers until `stop` (or, with burst, until the queue is empty). Store and storage
    are shared. Each worker gets its own queue consumer, except on the embedded queue, where the
    API's `shared_queue` lets its publishes wake the workers at once.

    Without `events` (a standalone `python worker.py`) the workers get their own bus, and webhooks
    for the jobs they finish are delivered from this process; the API passes its own bus instead."""
    async with AsyncExitStack() as stack:
        if store is None:
            store = await open_store(settings)
            stack.push_async_callback(store.close)
        if storage is None:
            storage = await open_storage(settings)
            stack.push_async_callback(storage.close)
        if events is None:
            events = JobEvents()
            webhooks = WebhookDispatcher(settings, store)
            events.subscribe(webhooks.on_event)
            stack.push_async_callback(webhooks.aclose)  # after the workers stopped, before the store closes
        workers = []
        for _ in range(count):
            if shared_queue is not None and settings.QUEUE_BACKEND == "embedded":
                queue = shared_queue
            else:
                queue = await open_queue(settings, store, consumer=True)
                stack.push_async_callback(queue.close)
            workers.append(Worker(settings, store, queue, storage, events=events))
        if metrics is not None:
            metrics.track_workers(workers, events)
        await asyncio.gather(*(worker.run(stop, burst=burst) for worker in workers))
        return workers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a MediaFlow worker (settings from the environment and .env).")
    parser.add_argument("--concurrency", type=int, help="jobs at a time (default: WORKER_CONCURRENCY)")
    parser.add_argument("--burst", action="store_true", help="exit once no queued job is left")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)

    async def _main(metrics: Metrics | None) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_workers(settings, args.concurrency or settings.WORKER_CONCURRENCY, stop, burst=args.burst,
                          metrics=metrics)

    try:
        with worker_metrics_server(settings) as metrics:  # WORKER_METRICS_PORT; None when unset
            asyncio.run(_main(metrics))
    except (*BACKEND_UNAVAILABLE, MetricsServerError) as exc:
        print(f"mediaflow worker: cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
