"""A run's outcome as a value: what the work returned, why it was stopped (the first stop wins), or the
error it raised; and a cancellation of the run itself is never mistaken for a stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mediaflow.jobs.events import FailureReason
from mediaflow.jobs.model import Job
from mediaflow.observability import tracing
from mediaflow.worker.job_run import outcome_of
from mediaflow.worker.outcomes import LEASE_LOST, SHUTDOWN, Done, Failed, Stop, StopCause, Stopped
from mediaflow.worker.run_context import RunContext, WorkerServices
from mediaflow.worker.server_paths import ServerPaths
from tests.apptools import make_settings


def context(tmp_path: Path) -> RunContext:
    settings = make_settings(tmp_path)
    # Only the run's own state is used here; no store, queue or storage is reached.
    services = WorkerServices(settings, None, None, None, None, "w1")  # type: ignore[arg-type]
    return RunContext(
        services,
        Job(source="clip.mp4"),
        tmp_path,
        ServerPaths(settings, tmp_path),
        tracing.PhaseSpans("j"),
        storage=None,  # type: ignore[arg-type]
    )


async def test_the_works_result_is_the_outcome(tmp_path: Path) -> None:
    ctx = context(tmp_path)

    async def work() -> Done:
        return Done("out", "log")

    ctx.work = asyncio.create_task(work())
    assert await outcome_of(ctx, ctx.work) == Done("out", "log")


async def test_a_stopped_run_ends_as_its_first_stop(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    started = asyncio.Event()

    async def work() -> Done:
        started.set()
        await asyncio.sleep(60)
        return Done("never", "never")

    ctx.work = asyncio.create_task(work())
    await started.wait()
    ctx.halt(LEASE_LOST)
    ctx.halt(SHUTDOWN)  # a shutdown during a lease loss must not release a job another worker has
    assert await outcome_of(ctx, ctx.work) == Stopped(LEASE_LOST)
    assert ctx.stop is LEASE_LOST and ctx.stop.cause is StopCause.LEASE_LOST


async def test_a_time_limit_stop_carries_its_failure_class(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.work = asyncio.create_task(asyncio.sleep(60))
    await asyncio.sleep(0)
    limit = Stop(StopCause.TIME_LIMIT, "job exceeded its time limit", FailureReason.TIME_LIMIT)
    ctx.halt(limit)
    outcome = await outcome_of(ctx, ctx.work)
    assert isinstance(outcome, Stopped) and outcome.stop.failure is FailureReason.TIME_LIMIT


async def test_an_error_is_a_failed_outcome(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    error = OSError("disk full")

    async def work() -> Done:
        raise error

    ctx.work = asyncio.create_task(work())
    assert await outcome_of(ctx, ctx.work) == Failed(error)


async def test_halting_a_finished_run_changes_nothing(tmp_path: Path) -> None:
    ctx = context(tmp_path)

    async def work() -> Done:
        return Done("out", "log")

    ctx.work = asyncio.create_task(work())
    await ctx.work
    ctx.halt(SHUTDOWN)
    assert ctx.stop is None


async def test_cancelling_the_run_itself_is_not_a_stop(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.work = asyncio.create_task(asyncio.sleep(60))
    waiting = asyncio.create_task(outcome_of(ctx, ctx.work))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert ctx.work.cancelled()  # the work went with it (ffmpeg is killed on cancellation)
