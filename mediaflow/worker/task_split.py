"""Spreading a job over the workers: whether to (jobs/fanout.py decides, from the probed source and
the live worker slots), and the split itself — one task per whole output, one per HLS rendition
(renditions_run.py), chunk and audio tasks per chunked video output (chunked_run.py). The task records
are created here; settle marks the job awaiting them and then publishes them (in that order, so a
task that finishes at once finds the job to take back).
"""

from __future__ import annotations

from collections.abc import Sequence

from mediaflow.jobs.fanout import FanOut, plan_fanout
from mediaflow.jobs.model import Phase, utcnow
from mediaflow.jobs.outputs import encode_states, initial_states
from mediaflow.jobs.tasks import TaskSpec, new_task
from mediaflow.logs import get_logger
from mediaflow.media.chunking import ChunkingError
from mediaflow.media.outputs import OutputSpec
from mediaflow.media.outputs.spec import HlsOutput, VideoOutput
from mediaflow.storage.keys import task_key
from mediaflow.store.workers import live_worker_slots
from mediaflow.worker.chunked_run import chunk_tasks
from mediaflow.worker.outcomes import HandedOver
from mediaflow.worker.outputs_run import FetchedSource
from mediaflow.worker.renditions_run import rendition_tasks
from mediaflow.worker.run_context import RunContext

log = get_logger("worker")


def may_spread(outputs: Sequence[OutputSpec]) -> bool:
    """Whether any output lets the job be spread (`parallel` true or "auto"); if not, it never has tasks."""
    return any(getattr(output, "parallel", False) is not False for output in outputs)


async def plan_spread(ctx: RunContext, outputs: Sequence[OutputSpec], source: FetchedSource) -> FanOut | None:
    """How to spread the job over the workers, or None to make every output here."""
    if not may_spread(outputs):
        return None
    slots = await _live_slots(ctx)
    return plan_fanout(outputs, source.info, live_slots=slots, min_source_s=ctx.settings.CHUNK_MIN_SOURCE_S)


async def _live_slots(ctx: RunContext) -> int:
    """Worker slots alive on every machine; 1 (do not spread on "auto") when the store cannot tell."""
    try:
        return await live_worker_slots(ctx.store, utcnow())
    except Exception as exc:
        log.warning("workers.unknown", error=str(exc))
        return 1


async def split_into_tasks(
    ctx: RunContext, outputs: Sequence[OutputSpec], fanout: FanOut, source: FetchedSource
) -> HandedOver:
    """Create the job's task records; the result names them, to publish once the job is handed over."""
    job, settings = ctx.job, ctx.settings
    states = initial_states([{"name": o.name, "type": o.type} for o in outputs])
    ctx.progress.enter(Phase.ENCODING)
    specs: list[TaskSpec] = []
    for output, state in zip(outputs, states, strict=True):
        state.status = "processing"
        how = fanout.of(output.name)
        if how == "chunks" and isinstance(output, VideoOutput):
            try:
                specs += await chunk_tasks(ctx, output, source.path, source.info, state)
                continue
            except ChunkingError as exc:  # e.g. no keyframe to cut on: one task makes it whole
                state.notes.append(f"not chunked: {exc}")
                log.warning("output.not_chunked", output=output.name, reason=str(exc))
        if how == "renditions" and isinstance(output, HlsOutput):
            specs += rendition_tasks(settings, job.job_id, output, source.info, state)
            continue
        specs.append(
            TaskSpec(
                kind="output",
                total=0,
                output=output.name,
                spec=output.model_dump_json(),
                result=task_key(settings, job.job_id, f"{output.name}.files.json"),
            )
        )
    tasks = [new_task(job, spec.model_copy(update={"total": len(specs)})) for spec in specs]
    for task in tasks:
        await ctx.store.create(task)
    ctx.record(outputs=encode_states(states))
    log.info(
        "job.split", tasks=len(tasks), reason=fanout.reason, outputs={name: how for name, how in fanout.splits.items()}
    )
    return HandedOver([task.job_id for task in tasks])
