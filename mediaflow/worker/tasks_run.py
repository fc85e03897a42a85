"""A task's run inside a worker (a spread job's piece of work; see fanout_run.py for the job's side).

A task is claimed, leased and settled by job_run exactly like a job; this module does its work by
kind — `chunk`: fetch the split piece from storage, encode it with the output's options, store the
result; `audio`: fetch the source, encode that output's audio once, store it; `output` and
`rendition`: fetch the source, make the output (or the one rendition) as a whole job would, store its
files at their final keys and its file list as the result — and, once the task is settled,
`take_parent_if_done` renews the job's lease with its progress (tasks done / all) and, when no task is
left running (all done, or one failed), takes the job (awaiting its tasks) for this worker to finish.
"""

from __future__ import annotations

import json
from pathlib import Path

from mediaflow.jobs import lifecycle
from mediaflow.jobs.fanout import outputs_progress
from mediaflow.jobs.model import Job, JobStatus, Phase
from mediaflow.jobs.outputs import encode_states, initial_states
from mediaflow.jobs.tasks import TaskSpec, task_spec, tasks_progress
from mediaflow.logs import get_logger
from mediaflow.media import ffmpeg
from mediaflow.media.chunking import encode_audio, encode_chunk
from mediaflow.media.inputs import ffmpeg_binary
from mediaflow.media.outputs import parse_outputs
from mediaflow.media.sources import fetch_source, parse_source
from mediaflow.worker.outputs_run import JobRunner, Run, combined_log, encode_outputs, fetch_and_probe, store_result
from mediaflow.worker.renditions_run import master_path, rendition_result

log = get_logger("worker")


async def execute_task(runner: JobRunner, run: Run, workdir: Path) -> tuple[str, str]:
    """Do one task's work; returns where its result was stored (the task record's output_path)."""
    spec = task_spec(run.job)
    run.log_file = workdir / "ffmpeg.log"
    if spec.kind in ("output", "rendition"):
        result_file = await _make_output(runner, run, workdir, spec)
    else:
        result_file = await _encode_piece(runner, run, workdir, spec)
    run.progress.enter(Phase.UPLOADING)
    location = await runner.with_retries(
        lambda: runner.storage.put_file(spec.result, result_file, "application/octet-stream"),
        f"store the {spec.kind} result",
    )
    log.info("task.done", kind=spec.kind, output=spec.output, index=spec.index, parent_id=run.job.parent_id)
    return location, await runner.store_log(run)  # the job's run joins the tasks' logs into its own


async def _encode_piece(runner: JobRunner, run: Run, workdir: Path, spec: TaskSpec) -> Path:
    task, settings, progress = run.job, runner.settings, run.progress
    binary = ffmpeg_binary(settings)
    progress.enter(Phase.DOWNLOADING)
    result = workdir / "result"
    if spec.kind == "chunk":
        piece = workdir / "piece.mp4"
        await runner.with_retries(lambda: runner.storage.get_file(spec.piece, piece), "fetch the chunk's piece")
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
            log_path=run.log_file,
            on_progress=on_progress,
        )
    else:
        source = parse_source(task.source, settings, runner.storage, task.owner)
        input_path = await runner.with_retries(
            lambda: fetch_source(source, workdir, runner.storage, settings, progress.transfer), "fetch source"
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
            log_path=run.log_file,
        )
    run.encode_speed = progress.speed
    return result


async def _make_output(runner: JobRunner, run: Run, workdir: Path, spec: TaskSpec) -> Path:
    """A whole output, or one rendition: its files go to their final keys (the job's folder), its state
    onto the task record; the result file lists every file stored (and a rendition's master playlist)."""
    [output] = parse_outputs([json.loads(spec.spec or "null")])  # our own JSON, validated again all the same
    input_path, info = await fetch_and_probe(runner, run, workdir)
    states = initial_states([{"name": output.name, "type": output.type}])
    results, out_dir = await encode_outputs(runner, run, workdir, [output], input_path, info, states)
    run.log_file = combined_log(results, workdir / "ffmpeg.log")
    run.progress.enter(Phase.UPLOADING)
    master = master_path(output.name) if spec.kind == "rendition" else None
    files = await store_result(runner, run, results[0], states[0], out_dir, skip=(master,) if master else ())
    run.record(outputs=encode_states(states))
    await runner.flush(run)  # the join reads the output's state from the task record
    result_file = workdir / "result.json"
    if master is not None and results[0].status == "completed":
        result_file.write_text(rendition_result(files, (out_dir / master).read_text()))
    else:
        result_file.write_text(json.dumps({"files": files}))
    return result_file


async def take_parent_if_done(runner: JobRunner, worker_id: str, task: Job) -> Job | None:
    """After a task settled: write the job's progress (and renew its long lease); return the job, taken
    over by this worker, when every task is done or one failed, else None."""
    job_id = task.parent_id
    if job_id is None:  # never, for a task record (the model checks it); narrows the type
        return None
    tasks = await runner.store.list_tasks(job_id)
    if not tasks:
        return None
    lease = runner.settings.JOB_TIMEOUT_S
    parent = await runner.store.get(job_id)
    if parent is None:
        return None
    states = outputs_progress(parent.outputs, tasks)
    held = await lifecycle.renew_awaiting_tasks(
        runner.store,
        job_id,
        lease,
        progress=tasks_progress(tasks),
        **({"outputs": states} if states is not None else {}),
    )
    if held is None:
        return None  # canceled, finished, or another worker is finishing it
    if any(t.status is JobStatus.FAILED or t.status is JobStatus.CANCELED for t in tasks) or all(
        t.status is JobStatus.COMPLETED for t in tasks
    ):
        taken = await lifecycle.take_from_tasks(runner.store, job_id, worker_id, runner.settings.LEASE_SECONDS)
        if taken is not None:
            log.info("job.taken_back", job_id=taken.job_id, tasks=len(tasks))
        return taken
    return None
