"""Putting a spread job together (on the worker that took it back once no task was left running): a
whole output's state comes from its task, a ladder gets its master playlist (renditions_run.py), chunks
are joined (chunked_run.py); then the job's file list and its one log (every task's, then the join's)
are stored, the tasks' temporary files removed, and the job completes, or fails naming the outputs whose
tasks failed (the others stay downloadable).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from mediaflow.jobs import lifecycle
from mediaflow.jobs.model import Job, JobStatus, Phase
from mediaflow.jobs.outputs import OutputState, decode_states, encode_states
from mediaflow.jobs.retention import remove_tasks_folder
from mediaflow.jobs.tasks import TaskSpec, task_spec
from mediaflow.logs import get_logger
from mediaflow.media.outputs import OutputSpec
from mediaflow.media.outputs.spec import HlsOutput, VideoOutput
from mediaflow.storage.keys import log_key, output_key
from mediaflow.worker.chunked_run import join_chunks
from mediaflow.worker.outcomes import Done
from mediaflow.worker.outputs_run import (
    FetchedSource,
    combined_log,
    fetch_and_probe,
    raise_if_failed,
    store_manifest,
    store_result,
)
from mediaflow.worker.renditions_run import join_renditions
from mediaflow.worker.run_context import RunContext

log = get_logger("worker")


async def join_tasks(ctx: RunContext, outputs: Sequence[OutputSpec], tasks: list[Job]) -> Done:
    job = ctx.job
    for task in tasks:  # a task failed: the others stop at their next lease renewal
        if not task.status.is_final:
            await lifecycle.cancel(ctx.store, task)
    states = {s.name: s for s in decode_states(job.outputs)}
    spec_of = {task.job_id: task_spec(task) for task in tasks}  # each task's JSON parsed once
    by_output: dict[str, list[Job]] = defaultdict(list)
    for task in tasks:
        by_output[spec_of[task.job_id].output].append(task)
    source: FetchedSource | None = None
    ctx.progress.enter(Phase.ENCODING)
    every_file: list[dict] = []
    logs = []
    for output in outputs:
        state = states.get(output.name) or OutputState(name=output.name, type=output.type)
        states[output.name] = state
        mine = by_output.get(output.name, [])
        specs = [spec_of[t.job_id] for t in mine]
        unfinished = [t for t in mine if t.status is not JobStatus.COMPLETED]
        if not mine or unfinished:
            state.status, state.progress = "failed", 0
            state.error = (
                _task_error(unfinished[0], spec_of[unfinished[0].job_id]) if unfinished else "its tasks are missing"
            )
            continue
        if specs[0].kind == "output":
            [state] = decode_states(mine[0].outputs) or [state]
            states[output.name] = state
            every_file += (await _read_result(ctx, specs[0]))["files"]
        elif specs[0].kind == "rendition" and isinstance(output, HlsOutput):
            rendition_states = [next(iter(decode_states(t.outputs)), None) for t in mine]
            failed = [s for s in rendition_states if s is None or s.status != "completed"]
            if failed:
                why = failed[0].error if failed[0] is not None else None
                state.status, state.error, state.progress = "failed", why or "a rendition task left no result", 0
                continue
            results = [await _read_result(ctx, spec) for spec in specs]
            every_file += await join_renditions(ctx, output, specs, results, state)
        elif isinstance(output, VideoOutput):
            source = source or await fetch_and_probe(ctx)
            result, out_dir = await join_chunks(ctx, output, specs, source.path, source.info, state)
            logs.append(result)
            every_file += await store_result(ctx, result, state, out_dir)
    ordered = [states[o.name] for o in outputs]
    join_log = combined_log(logs, ctx.workdir / "join.log")
    ctx.log_file = await _joined_log(ctx, tasks, spec_of, join_log)
    log_location = await ctx.store_log()
    ctx.progress.enter(Phase.UPLOADING)
    await store_manifest(ctx, ctx.workdir / "outputs", every_file)
    ctx.record(outputs=encode_states(ordered))
    await ctx.flush()
    await remove_tasks_folder(ctx.settings, ctx.storage, job.job_id)  # pieces, results, task logs
    log.info("job.joined", tasks=len(tasks), workers=len({t.worker_id for t in tasks}))
    raise_if_failed(job, ordered)
    first_file = every_file[0]["path"]  # every output completed, so there are files
    return Done(ctx.storage.location(output_key(ctx.settings, job.job_id, first_file)), log_location)


async def _joined_log(ctx: RunContext, tasks: list[Job], spec_of: dict[str, TaskSpec], join_log: Path) -> Path:
    """The job's one log: every task's ffmpeg log under a header naming the task and its worker, then the join's."""
    path, fetched = ctx.workdir / "ffmpeg.log", ctx.workdir / "task.log"
    ordered = sorted(tasks, key=lambda t: (spec_of[t.job_id].output, spec_of[t.job_id].kind, spec_of[t.job_id].index))
    with open(path, "wb") as combined:  # noqa: ASYNC230  (opening is cheap; reads and writes go through threads or are small)
        for task in ordered:
            spec = spec_of[task.job_id]
            combined.write(
                f"===== task {spec.output} {spec.kind} {spec.index} on {task.worker_id} "
                f"({task.status.value}) =====\n".encode()
            )
            try:
                await ctx.storage.get_file(log_key(ctx.settings, task.job_id, ctx.job.job_id), fetched)
                combined.write(fetched.read_bytes())
            except Exception as exc:
                combined.write(f"(no log: {type(exc).__name__})\n".encode())
        combined.write(join_log.read_bytes())
    return path


def _task_error(task: Job, spec: TaskSpec) -> str:
    what = f"{spec.kind} task" + (f" {spec.index}" if spec.kind in ("chunk", "rendition") else "")
    if task.status is JobStatus.FAILED:
        return f"{what} failed: {task.error or 'no reason given'}"
    return f"not finished: another task of the job failed first ({what} was {task.status.value})"


async def _read_result(ctx: RunContext, spec: TaskSpec) -> dict:
    """A task's result file (its file list), small JSON written by the task itself."""
    local = ctx.workdir / "results" / f"{spec.output}.{spec.kind}{spec.index}.json"
    local.parent.mkdir(parents=True, exist_ok=True)
    await ctx.with_retries(lambda: ctx.storage.get_file(spec.result, local), f"fetch {spec.output}'s task result")
    return json.loads(local.read_text())
