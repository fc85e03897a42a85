"""One claimed record's run inside a worker, from claim to settled state and what follows it.

`JobRunner.run` gives the record a work dir and a `RunContext`, does its work (job_work.py) while the
lease keeper (lease_keeper.py) renews the lease, writes progress and stops the work when the lease is
lost or a time limit is hit, then settles the outcome (settle.py). What follows a settled run is the
job run's too (tasks_run.after_run): a task's job taken back to be finished here, and what a stopped
job's tasks left behind removed. `loop.py` only receives, claims and dispatches.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import structlog

from mediaflow.jobs.model import Job
from mediaflow.logs import get_logger
from mediaflow.media.sources import redacted
from mediaflow.observability import tracing
from mediaflow.storage.destinations import job_storage
from mediaflow.worker.job_work import do_work
from mediaflow.worker.lease_keeper import keep_lease
from mediaflow.worker.outcomes import Done, Failed, Outcome, Stop, Stopped, WorkResult
from mediaflow.worker.run_context import RunContext, WorkerServices
from mediaflow.worker.server_paths import ServerPaths
from mediaflow.worker.settle import settle
from mediaflow.worker.tasks_run import after_run

log = get_logger("worker")

WORKDIR_PREFIX = "mediaflow-w"


def remove_dead_workers_dirs(parent: Path) -> None:
    """Remove `mediaflow-w<pid>-…` temp dirs whose worker process is gone (SIGKILL, OOM, crash):
    a killed worker cannot clean up, and its source copy and partial output can be large."""
    for path in parent.glob(f"{WORKDIR_PREFIX}*-*"):
        pid = path.name[len(WORKDIR_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists() and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            log.info("workdir.removed", path=str(path), reason=f"worker {pid} is gone")


class JobRunner:
    """Runs one claimed record at a time for a worker slot, and whatever its settling hands on."""

    def __init__(self, services: WorkerServices) -> None:
        self.services = services
        self.current: RunContext | None = None  # the run in progress, if any

    def stop_current(self, stop: Stop) -> None:
        """Stop the run in progress (worker shutdown); it settles by `stop`'s cause."""
        if self.current is not None:
            self.current.halt(stop)

    async def run(self, job: Job) -> None:
        """Run `job`, then the job its settling hands to this worker (a spread job taken back from
        its tasks), until nothing follows."""
        next_job: Job | None = job
        while next_job is not None:
            outcome = await self._run_one(next_job)
            next_job = await after_run(self.services, next_job, completed=isinstance(outcome, Done))

    async def _run_one(self, job: Job) -> Outcome | None:
        with (
            structlog.contextvars.bound_contextvars(job_id=job.job_id, attempt=job.attempts),
            tracing.span(
                "job.run",
                job.traceparent,
                {tracing.TRACED_JOB_ATTRIBUTE: job.job_id, "mediaflow.attempt": job.attempts},
            ),
        ):
            log.info("job.claimed", method=job.label, source=redacted(job.source))
            settings = self.services.settings
            # The worker's PID in the name lets other workers remove it if this process is killed.
            workdir = Path(
                tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-{job.job_id[:8]}-", dir=settings.WORK_DIR)
            )
            ctx = RunContext(
                self.services,
                job,
                workdir,
                paths=ServerPaths(settings, workdir),
                phases=tracing.PhaseSpans(job.job_id),
                # A job with a `destination` stores its folder there, through a view (storage/destinations.py).
                storage=job_storage(self.services.storage, settings, job.parent_id or job.job_id, job.destination),
            )
            self.current = ctx
            work = ctx.work = asyncio.create_task(do_work(ctx))
            keeper = asyncio.create_task(keep_lease(ctx, work))
            outcome: Outcome | None = None
            try:
                outcome = await outcome_of(ctx, work)
                await settle(ctx, outcome)
            finally:
                ctx.phases.end(_span_error(outcome))
                keeper.cancel()
                await asyncio.gather(keeper, return_exceptions=True)
                shutil.rmtree(workdir, ignore_errors=True)
                self.current = None
            return outcome


async def outcome_of(ctx: RunContext, work: asyncio.Task[WorkResult]) -> Outcome:
    """What the work came to: its result, why it was stopped, or the error it raised."""
    try:
        return await work
    except asyncio.CancelledError:
        if ctx.stop is None:  # we ourselves are being cancelled
            raise
        return Stopped(ctx.stop)
    except Exception as exc:
        return Failed(exc)


def _span_error(outcome: Outcome | None) -> str | None:
    """What marks the run's last tracing span as failed, if anything."""
    if isinstance(outcome, Stopped):
        return outcome.stop.reason
    if isinstance(outcome, Failed):
        return str(outcome.error)
    return None
