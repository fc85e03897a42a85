"""A task's run inside a worker (a spread job's piece of work; task_split.py and task_join.py are the
job's side), and what the worker does once a run is settled. The worker's task-specific calls live here.

A task is claimed, leased and settled by job_run exactly like a job; `run_task` does its work by
kind — `chunk`: fetch the split piece from storage, encode it with the output's options, store the
result; `audio`: fetch the source, encode that output's audio once, store it; `output` and
`rendition`: fetch the source, make the output (or the one rendition) as a whole job would, store its
files at their final keys and its file list as the result.
Once a task is settled, `after_run` renews its job's lease with its progress (tasks done / all) and,
when no task is left running (all done, or one failed), takes the job (awaiting its tasks) for this
worker to finish; and it removes what a stopped job's tasks left in its `.tasks/` folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from mediaflow.jobs import lifecycle
from mediaflow.jobs.fanout import outputs_progress
from mediaflow.jobs.model import Job, JobStatus, Phase
from mediaflow.jobs.outputs import encode_states, initial_states
from mediaflow.jobs.retention import remove_tasks_folder
from mediaflow.jobs.tasks import TaskSpec, task_spec, tasks_progress
from mediaflow.logs import get_logger
from mediaflow.media import ffmpeg
from mediaflow.media.chunking import encode_audio, encode_chunk
from mediaflow.media.inputs import ffmpeg_binary
from mediaflow.media.outputs import parse_outputs
from mediaflow.media.sources import fetch_source, parse_source
from mediaflow.worker.outcomes import Done
from mediaflow.worker.outputs_run import combined_log, encode_outputs, fetch_and_probe, store_result
from mediaflow.worker.renditions_run import master_path, rendition_result
from mediaflow.worker.run_context import RunContext, WorkerServices

log = get_logger("worker")


async def run_task(ctx: RunContext) -> Done:
    """Do one task's work; its result's location is the task record's output_path."""
    spec = task_spec(ctx.job)
    ctx.log_file = ctx.workdir / "ffmpeg.log"
    if spec.kind in ("output", "rendition"):
        result_file = await _make_output(ctx, spec)
    else:
        result_file = await _encode_piece(ctx, spec, ctx.log_file)
    ctx.progress.enter(Phase.UPLOADING)
    location = await ctx.with_retries(
        lambda: ctx.storage.put_file(spec.result, result_file, "application/octet-stream"),
        f"store the {spec.kind} result",
    )
    log.info("task.done", kind=spec.kind, output=spec.output, index=spec.index, parent_id=ctx.job.parent_id)
    return Done(location, await ctx.store_log())  # the job's run joins the tasks' logs into its own


async def _encode_piece(ctx: RunContext, spec: TaskSpec, log_path: Path) -> Path:
    task, settings, progress, workdir = ctx.job, ctx.settings, ctx.progress, ctx.workdir
    binary = ffmpeg_binary(settings)
    progress.enter(Phase.DOWNLOADING)
    result = workdir / "result"
    if spec.kind == "chunk":
        if spec.piece is None:  # TaskSpec.of_chunk always names it; a record edited by hand may not
            raise ValueError(f"chunk task {task.job_id} names no piece to encode")
        piece, piece_key = workdir / "piece.mp4", spec.piece
        await ctx.with_retries(lambda: ctx.storage.get_file(piece_key, piece), "fetch the chunk's piece")
        seconds = (
            (None if spec.end is None else spec.end - spec.start)
            if spec.trim_end is None
            else spec.trim_end - spec.trim_start
        )

        async def on_progress(update: ffmpeg.ProgressUpdate) -> None:
            progress.encoding(update.out_time_s, seconds, update.speed)

        progress.enter(Phase.ENCODING)
        await encode_chunk(
            binary,
            piece,
            spec.chunk(),
            result,
            spec.options,
            threads=settings.FFMPEG_THREADS,
            log_path=log_path,
            on_progress=on_progress,
        )
    else:
        source = parse_source(task.source, settings, ctx.storage, task.owner)
        input_path = await ctx.with_retries(
            lambda: fetch_source(source, workdir, ctx.storage, settings, progress.transfer), "fetch source"
        )
        progress.enter(Phase.ENCODING)
        await encode_audio(
            binary,
            input_path,
            result,
            spec.options,
            muxer=spec.muxer,
            clip_start=spec.clip_start,
            clip_end=spec.clip_end,
            threads=settings.FFMPEG_THREADS,
            log_path=log_path,
        )
    ctx.encode_speed = progress.speed
    return result


async def _make_output(ctx: RunContext, spec: TaskSpec) -> Path:
    """A whole output, or one rendition: its files go to their final keys (the job's folder), its state
    onto the task record; the result file lists every file stored (and a rendition's master playlist)."""
    [output] = parse_outputs([json.loads(spec.spec or "null")])  # our own JSON, validated again all the same
    source = await fetch_and_probe(ctx)
    states = initial_states([{"name": output.name, "type": output.type}])
    encoded = await encode_outputs(ctx, [output], source.path, source.info, states)
    results, out_dir = encoded.results, encoded.out_dir
    ctx.log_file = combined_log(results, ctx.workdir / "ffmpeg.log")
    ctx.progress.enter(Phase.UPLOADING)
    master = master_path(output.name) if spec.kind == "rendition" else None
    files = await store_result(ctx, results[0], states[0], out_dir, skip=(master,) if master else ())
    ctx.record(outputs=encode_states(states))
    await ctx.flush()  # the join reads the output's state from the task record
    result_file = ctx.workdir / "result.json"
    if master is not None and results[0].status == "completed":
        result_file.write_text(rendition_result(files, (out_dir / master).read_text()))
    else:
        result_file.write_text(json.dumps({"files": files}))
    return result_file


async def after_run(services: WorkerServices, job: Job, *, completed: bool) -> Job | None:
    """What follows a settled run: for a task, its job's progress, and the job itself (taken back from
    its tasks, for this worker to run next) once no task is left running. Cancel removes a spread
    job's `.tasks/` folder, but a task (or the split) storing its file at that moment stores it after:
    once a stopped job's run (or one of its tasks') is over, what it left is removed. `completed`: the
    job's run ended in `Done` (made here, or joined, which removes the folder itself): nothing to do."""
    if job.parent_id is None:
        if not completed:
            await _remove_pieces_if_stopped(services, job.job_id)
        return None
    parent = await take_parent_if_done(services, job.parent_id)
    await _remove_pieces_if_stopped(services, job.parent_id)
    return parent


async def _remove_pieces_if_stopped(services: WorkerServices, job_id: str) -> None:
    job = await services.store.get(job_id)
    if job is None or job.status in (JobStatus.CANCELED, JobStatus.FAILED):
        await remove_tasks_folder(services.settings, services.storage, job_id)


async def take_parent_if_done(services: WorkerServices, parent_id: str) -> Job | None:
    """After a task of `parent_id` settled: write the job's progress (and renew its long lease); return
    the job, taken over by this worker, when every task is done or one failed, else None."""
    store = services.store
    tasks = await store.list_tasks(parent_id)
    if not tasks:
        return None
    lease = services.settings.JOB_TIMEOUT_S
    parent = await store.get(parent_id)
    if parent is None:
        return None
    states = outputs_progress(parent.outputs, tasks)
    held = await lifecycle.renew_awaiting_tasks(
        store,
        parent_id,
        lease,
        progress=tasks_progress(tasks),
        **({"outputs": states} if states is not None else {}),
    )
    if held is None:
        return None  # canceled, finished, or another worker is finishing it
    if any(t.status is JobStatus.FAILED or t.status is JobStatus.CANCELED for t in tasks) or all(
        t.status is JobStatus.COMPLETED for t in tasks
    ):
        taken = await lifecycle.take_from_tasks(store, parent_id, services.worker_id, services.settings.LEASE_SECONDS)
        if taken is not None:
            log.info("job.taken_back", job_id=taken.job_id, tasks=len(tasks))
        return taken
    return None
