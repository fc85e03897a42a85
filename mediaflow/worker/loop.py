"""The MediaFlow worker. `python worker.py` runs one worker process (WORKER_CONCURRENCY jobs at a time).

One job's way through a worker:
    queue.receive() → lifecycle.claim (atomic; lost races are skipped) → delivery.ack()
    → JobRunner.run (job_run.py): fetch the source → probe and check it → make its outputs (ffmpeg
      with -progress) → store them and the log → lifecycle.complete (only if this worker still holds
      the lease); or split it into tasks, or put it together from them
While a job runs, a lease keeper renews the lease and writes progress (throttled); if the lease is
lost (the job was canceled, or re-queued after this worker looked dead), ffmpeg is stopped at once.
This module only receives, claims and dispatches (and drains on shutdown), and runs `python worker.py`;
expired leases are re-queued by the reaper (reaper.py), one per process that hosts workers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import sys
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack, suppress

import structlog

from mediaflow.jobs import lifecycle
from mediaflow.jobs.events import JobEvents
from mediaflow.jobs.model import Job, JobStatus, utcnow
from mediaflow.logs import configure_logging, get_logger
from mediaflow.observability import tracing
from mediaflow.observability.metrics import Metrics, MetricsServerError, worker_metrics_server
from mediaflow.queue import JobQueue, QueueError, open_queue
from mediaflow.runtime import BACKEND_UNAVAILABLE, Runtime, open_runtime
from mediaflow.settings import Settings
from mediaflow.storage import Storage
from mediaflow.store import JobStore
from mediaflow.worker.job_run import JobRunner
from mediaflow.worker.outcomes import SHUTDOWN
from mediaflow.worker.presence import PresenceBeat
from mediaflow.worker.reaper import LeaseReaper
from mediaflow.worker.run_context import WorkerServices

log = get_logger("worker")

_SWEEP_BATCH = 4  # queued jobs an idle worker considers per store sweep


def new_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


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
        self.runner = JobRunner(WorkerServices(settings, store, queue, storage, self.events, self.worker_id))
        self._current: asyncio.Task | None = None
        # Called when `busy` changes (run_workers points it at the presence beat's `wake`).
        self.on_busy_change: Callable[[], None] = lambda: None
        self._next_task_sweep = 0.0  # event-loop time of the store sweep's next look for queued tasks

    @property
    def busy(self) -> bool:
        return self._current is not None

    # --- the loop ----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, burst: bool = False) -> None:
        """Take jobs until `stop` is set (or, in burst mode, until no job is left)."""
        structlog.contextvars.bind_contextvars(worker_id=self.worker_id)
        log.info("worker.started", store=self.settings.DB_BACKEND, queue=self.settings.QUEUE_BACKEND)
        self.running = True
        try:
            while not stop.is_set():
                try:
                    job = await self._next_job(stop)
                except Exception as exc:
                    # The store or broker is away (restarting, network): this worker waits and asks
                    # again instead of exiting. Whatever it was about to claim stays queued in the store.
                    log.warning(
                        "worker.cannot_take_jobs",
                        error=f"{type(exc).__name__}: {exc}",
                        retry_in_s=self.settings.POLL_INTERVAL_S,
                    )
                    await _sleep_unless(stop, self.settings.POLL_INTERVAL_S)
                    continue
                if job is None:
                    if burst and not await self._work_left():
                        break
                    continue
                current = self._current = asyncio.create_task(self._dispatch(job))
                self.on_busy_change()
                try:
                    await self._finish_or_release_on_stop(current, stop)
                except Exception:
                    # The job's record could not be settled (store unreachable?): its lease will
                    # expire and the reaper re-queues it. The worker itself carries on.
                    log.exception("job.settle_failed", job_id=job.job_id)
        finally:
            self.running = False
            log.info("worker.stopped", jobs_done=self.jobs_done)

    async def _next_job(self, stop: asyncio.Event) -> Job | None:
        delivery = await self.queue.receive(timeout=self.settings.POLL_INTERVAL_S)
        if delivery is None:
            return await self._sweep_stale_queued()
        claim_started = tracing.now_ns()
        job = await lifecycle.claim(
            self.store,
            delivery.job_id,
            self.worker_id,
            self.settings.LEASE_SECONDS,
            self.settings.MAX_ATTEMPTS,
            events=self.events,
        )
        # Parent: the trace context sent with the message (Kafka), else the one stored on the job.
        sent = dict(getattr(delivery, "headers", None) or {})
        tracing.record_span(
            "job.claim",
            sent or (job.traceparent if job else None),
            claim_started,
            {
                tracing.TRACED_JOB_ATTRIBUTE: delivery.job_id,
                "mediaflow.claimed": job is not None,
                "mediaflow.trace_context_from": "message" if sent else "job",
            },
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
        """With a broker, a queued job can wait behind a busy consumer of its partition, be published
        to a partition no idle worker holds (more workers than partitions), or its publish was lost;
        an idle worker takes the oldest such job from the store after QUEUED_SWEEP_AFTER_S. The claim
        is conditional, so two sweepers (or the partition's consumer) never both run it."""
        if self.settings.QUEUE_BACKEND == "embedded":
            return None
        cutoff = self.settings.QUEUED_SWEEP_AFTER_S

        def stale(found: list[Job]) -> list[Job]:
            return [job for job in found if (utcnow() - job.updated_at).total_seconds() >= cutoff]

        # A few candidates, not one: idle workers sweeping together then mostly try different jobs.
        waiting = stale(await self.store.list(limit=_SWEEP_BATCH, status=JobStatus.QUEUED, oldest_first=True))
        if not waiting and asyncio.get_running_loop().time() >= self._next_task_sweep:
            # A task whose publish was lost would otherwise wait for its job's lease (JOB_TIMEOUT_S).
            # Looked for once per QUEUED_SWEEP_AFTER_S at most (one indexed query of queued tasks).
            self._next_task_sweep = asyncio.get_running_loop().time() + cutoff
            waiting = stale(await self.store.list_queued_tasks(limit=_SWEEP_BATCH))
        random.shuffle(waiting)
        for job in waiting:
            claimed = await lifecycle.claim(
                self.store,
                job.job_id,
                self.worker_id,
                self.settings.LEASE_SECONDS,
                self.settings.MAX_ATTEMPTS,
                events=self.events,
            )
            if claimed is not None:
                log.info("job.swept", job_id=job.job_id, waited_s=round((utcnow() - job.updated_at).total_seconds(), 1))
                return claimed
        return None

    async def _work_left(self) -> bool:
        # Task records are left out of listings: a chunked job's queued tasks are work left too.
        return bool(
            await self.store.list(limit=1, status=JobStatus.QUEUED) or await self.store.list_queued_tasks(limit=1)
        )

    async def _finish_or_release_on_stop(self, current: asyncio.Task, stop: asyncio.Event) -> None:
        """Wait for the current job; on shutdown, give it SHUTDOWN_GRACE_S, then release it."""
        stop_waiter = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({current, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not current.done():
                log.info("worker.draining", grace_s=self.settings.SHUTDOWN_GRACE_S)
                await asyncio.wait({current}, timeout=self.settings.SHUTDOWN_GRACE_S)
            if not current.done():
                self.runner.stop_current(SHUTDOWN)
            await current
        finally:
            stop_waiter.cancel()
            self._current = None
            self.on_busy_change()

    async def _dispatch(self, job: Job) -> None:
        await self.runner.run(job)
        self.jobs_done += 1


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


# --- running workers -------------------------------------------------------------------------------


async def run_workers(
    runtime: Runtime,
    count: int,
    stop: asyncio.Event,
    *,
    burst: bool = False,
    metrics: Metrics | None = None,
) -> list[Worker]:
    """Run `count` workers on the runtime's store, storage and event bus until `stop` (or, with burst,
    until the queue is empty), with one lease reaper and one presence beat (presence.py) for them all.
    Each worker gets its own queue consumer, except on the embedded queue, where sharing the runtime's
    lets a publish in this process wake the workers at once."""
    settings = runtime.settings
    async with AsyncExitStack() as stack:
        workers = []
        for _ in range(count):
            if settings.QUEUE_BACKEND == "embedded":
                queue = runtime.queue
            else:
                queue = await open_queue(settings, runtime.store, consumer=True)
                stack.push_async_callback(queue.close)
            workers.append(Worker(settings, runtime.store, queue, runtime.storage, events=runtime.events))
        reaper = LeaseReaper(settings, runtime.store, runtime.queue, runtime.events)
        reaper.start()
        stack.push_async_callback(reaper.stop)
        presence = PresenceBeat(runtime.store.workers, workers, settings.LEASE_SECONDS)
        presence.start()
        stack.push_async_callback(presence.stop)
        for worker in workers:
            worker.on_busy_change = presence.wake
        if metrics is not None:
            metrics.track_workers(workers, runtime.events)
        await asyncio.gather(*(worker.run(stop, burst=burst) for worker in workers))
        return workers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a MediaFlow worker (settings from the environment and .env).")
    parser.add_argument("--concurrency", type=int, help="jobs at a time (default: WORKER_CONCURRENCY)")
    parser.add_argument("--burst", action="store_true", help="exit once no queued job is left")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    try:
        tracing.configure("mediaflow-worker")  # OTEL_TRACES_EXPORTER etc.; off when unset
    except tracing.TracingConfigError as exc:
        print(f"mediaflow worker: cannot start: {exc}", file=sys.stderr)
        return 2

    async def _main(metrics: Metrics | None) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # Standalone workers deliver the webhooks of the jobs they finish; retention is the API's.
        async with open_runtime(settings, retention=False) as runtime:
            await run_workers(
                runtime, args.concurrency or settings.WORKER_CONCURRENCY, stop, burst=args.burst, metrics=metrics
            )

    try:
        with worker_metrics_server(settings) as metrics:  # WORKER_METRICS_PORT; None when unset
            asyncio.run(_main(metrics))
    except (*BACKEND_UNAVAILABLE, MetricsServerError) as exc:
        print(f"mediaflow worker: cannot start: {exc}", file=sys.stderr)
        return 2
    return 0
