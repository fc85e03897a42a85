"""Turning a run's outcome into the record's next state: completed, handed to its tasks, failed,
given back to the queue, or (lease lost) nothing at all. Every write is conditional on this worker
still holding the lease, so a run that lost it cannot overwrite a newer state.
"""

from __future__ import annotations

import time

from mediaflow.jobs import lifecycle
from mediaflow.jobs.events import FailureReason
from mediaflow.logs import get_logger
from mediaflow.media.errors import FfmpegError, InvalidFormatError, ProbeError
from mediaflow.media.sources import SourceError
from mediaflow.storage import PermanentStorageError
from mediaflow.worker.outcomes import Done, Failed, HandedOver, Outcome, Stop, StopCause, Stopped
from mediaflow.worker.outputs_run import OutputsFailedError
from mediaflow.worker.run_context import RunContext

log = get_logger("worker")

# Failures that running the job again cannot fix: the job fails at once with the message. A storage
# request the server refused as such (S3 400 InvalidRequest, 403) gets the same answer every time.
PERMANENT_ERRORS = (SourceError, FfmpegError, InvalidFormatError, PermanentStorageError)


def failure_class(exc: BaseException) -> FailureReason:
    """The bounded reason class of a permanent failure (for metrics; the message stays on the job)."""
    if isinstance(exc, OutputsFailedError):
        return exc.reason
    if isinstance(exc, (SourceError, InvalidFormatError, ProbeError)):
        return FailureReason.INVALID_INPUT
    if isinstance(exc, FfmpegError):
        return FailureReason.FFMPEG
    return FailureReason.OTHER


async def settle(ctx: RunContext, outcome: Outcome) -> None:
    match outcome:
        case Done(output_path, log_path):
            await _complete(ctx, output_path, log_path)
        case HandedOver(queued):
            await _hand_over(ctx, queued)
        case Stopped(stop):
            await _stopped(ctx, stop)
        case Failed(error) if isinstance(error, PERMANENT_ERRORS):
            await _fail(ctx, ctx.paths.scrub(str(error)), failure_class(error))
        case Failed(error):  # storage/network trouble or a bug: let another attempt try
            reason = f"{type(error).__name__}: {error}"
            log.error("job.error", error=reason, exc_info=error)
            await _release(ctx, f"attempt {ctx.job.attempts} failed: {ctx.paths.scrub(reason)}")


async def _complete(ctx: RunContext, output_path: str, log_path: str) -> None:
    services = ctx.services
    finished = await lifecycle.complete(
        services.store,
        ctx.job,
        services.worker_id,
        output_path,
        log_path,
        events=services.events,
        speed=ctx.encode_speed,
    )
    if finished is None:
        log.warning("job.lease_lost_before_completion")
    else:
        log.info("job.completed", output=output_path, seconds=round(time.monotonic() - ctx.started, 2))


async def _hand_over(ctx: RunContext, queued: list[str]) -> None:
    """The job's work is out in tasks: mark it awaiting them (no worker, a lease as long as
    JOB_TIMEOUT_S, renewed by every settled task) before publishing them, so the reaper leaves it
    alone and the worker settling the last task finds it to take back."""
    services = ctx.services
    held = await lifecycle.hand_to_tasks(
        services.store,
        ctx.job.job_id,
        services.worker_id,
        ctx.settings.JOB_TIMEOUT_S,
        **ctx.progress.as_changes(),
        **ctx.take_pending(),
    )
    if held is None:
        log.warning("job.lease_lost_before_tasks")  # canceled meanwhile: the cancel took the tasks too
        return
    for task_id in queued:
        await services.queue.publish(task_id)
    log.info("job.handed_to_tasks", published=len(queued))


async def _stopped(ctx: RunContext, stop: Stop) -> None:
    if stop.cause is StopCause.LEASE_LOST:
        log.warning("job.lease_lost", reason="canceled or taken over; ffmpeg stopped")
    elif stop.cause is StopCause.SHUTDOWN:
        await _release(ctx, stop.reason)
    else:
        await _fail(ctx, stop.reason, stop.failure)


async def _fail(ctx: RunContext, error: str, reason: FailureReason) -> None:
    services = ctx.services
    await ctx.store_log_quietly()
    await lifecycle.fail(
        services.store,
        ctx.job,
        services.worker_id,
        error,
        ctx.job.log_path,
        events=services.events,
        reason=reason,
    )
    log.warning("job.failed", error=error)


async def _release(ctx: RunContext, reason: str) -> None:
    services = ctx.services
    released = await lifecycle.release(
        services.store, ctx.job.job_id, services.worker_id, reason=reason, events=services.events
    )
    if released is not None:
        await services.queue.publish(ctx.job.job_id)
    log.info("job.released", reason=reason)
