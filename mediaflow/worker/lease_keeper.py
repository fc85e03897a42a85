"""The lease keeper of a run: renews the record's lease, writes progress and the run's pending fields
(at most every PROGRESS_WRITE_INTERVAL_S, at least every LEASE_SECONDS / 3), announces progress
milestones, and stops the run when the lease is lost or a time limit is hit.
"""

from __future__ import annotations

import asyncio
import time

from mediaflow.jobs.events import EventType, FailureReason, JobEvent, crossed_milestone
from mediaflow.jobs.model import Job, Phase
from mediaflow.jobs.progress import RunProgress
from mediaflow.logs import get_logger
from mediaflow.settings import Settings
from mediaflow.worker.outcomes import LEASE_LOST, Stop, StopCause
from mediaflow.worker.run_context import RunContext

log = get_logger("worker")


async def keep_lease(ctx: RunContext, work: asyncio.Task) -> None:
    """Run beside `work` until it is done; halts it (with the reason) when the run must stop."""
    settings = ctx.settings
    renew_every = settings.LEASE_SECONDS / 3
    tick = min(max(settings.PROGRESS_WRITE_INTERVAL_S, 0.2), renew_every)
    last_write = time.monotonic()
    while not work.done():
        await asyncio.sleep(tick)
        now = time.monotonic()
        stop = time_limit(settings, ctx.progress, ctx.started, now)
        if stop is None and (ctx.progress.dirty or now - last_write >= renew_every):
            ctx.progress.dirty = False
            try:
                renewed = await ctx.flush()
            except Exception as exc:
                # The store is away for a moment: keep encoding and renew at the next tick. If it
                # stays away past the lease, the renewal that finally applies (or not) decides.
                log.warning("lease.renew_failed", error=f"{type(exc).__name__}: {exc}")
                continue
            last_write = now
            if renewed is None:
                stop = LEASE_LOST
            else:
                _announce_milestone(ctx, renewed)
        if stop is not None:
            ctx.halt(stop)
            return


def time_limit(settings: Settings, progress: RunProgress, started: float, now: float) -> Stop | None:
    """The time limit the run is over, if any: JOB_TIMEOUT_S in all, STALL_TIMEOUT_S without progress
    while encoding (a slow download is not a stall)."""
    if now - started > settings.JOB_TIMEOUT_S:
        return Stop(
            StopCause.TIME_LIMIT,
            f"job exceeded its time limit of {settings.JOB_TIMEOUT_S:.0f} s (JOB_TIMEOUT_S)",
            FailureReason.TIME_LIMIT,
        )
    if progress.phase is Phase.ENCODING and now - progress.last_advance > settings.STALL_TIMEOUT_S:
        return Stop(
            StopCause.TIME_LIMIT,
            f"ffmpeg made no progress for {settings.STALL_TIMEOUT_S:.0f} s (STALL_TIMEOUT_S)",
            FailureReason.STALLED,
        )
    return None


def _announce_milestone(ctx: RunContext, job: Job) -> None:
    if crossed_milestone(ctx.announced_progress, job.progress) is not None:
        ctx.services.events.emit(JobEvent(EventType.PROGRESS, job))
    ctx.announced_progress = job.progress
