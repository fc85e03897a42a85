"""A task's run inside a worker (chunked encoding; see chunked_run.py for the job's side).

A task is claimed, leased and settled by job_run exactly like a job; this module does its work by
kind — `chunk`: fetch the split piece from storage, encode it with the output's options, store the
result; `audio`: fetch the source, encode its audio once, store it — and, once the task is settled,
`take_parent_if_done` renews the job's lease with its progress (tasks done / all) and, when no task is
left running (all done, or one failed), takes the job back from TASKS_HOLDER for this worker to finish.
"""

from __future__ import annotations

from pathlib import Path

from mediaflow.jobs import lifecycle
from mediaflow.jobs.model import TASKS_HOLDER, Job, JobStatus, Phase
from mediaflow.jobs.tasks import chunks_progress, task_spec
from mediaflow.logs import get_logger
from mediaflow.media import ffmpeg
from mediaflow.media.chunking import encode_audio, encode_chunk
from mediaflow.media.inputs import ffmpeg_binary
from mediaflow.media.sources import fetch_source, parse_source
from mediaflow.worker.outputs_run import JobRunner, Run

log = get_logger("worker")


async def execute_task(runner: JobRunner, run: Run, workdir: Path) -> tuple[str, str | None]:
    """Do one task's work; returns where its result was stored (the task record's output_path)."""
    task, settings, progress = run.job, runner.settings, run.progress
    spec = task_spec(task)
    binary = ffmpeg_binary(settings)
    progress.enter(Phase.DOWNLOADING)
    result = workdir / "result"
    run.log_file = workdir / "ffmpeg.log"
    if spec.kind == "chunk":
        piece = workdir / "piece.mp4"
        await runner.with_retries(lambda: runner.storage.get_file(spec.piece, piece), "fetch the chunk's piece")
        seconds = None if spec.end is None else spec.end - spec.start

        async def on_progress(update: ffmpeg.ProgressUpdate) -> None:
            progress.encoding(update.out_time_s, seconds, update.speed)

        progress.enter(Phase.ENCODING)
        await encode_chunk(binary, piece, spec.chunk(), result, spec.options, threads=settings.FFMPEG_THREADS,
                           log_path=run.log_file, on_progress=on_progress)  # fmt: skip
    else:
        source = parse_source(task.source, settings, runner.storage, task.owner)
        input_path = await runner.with_retries(
            lambda: fetch_source(source, workdir, runner.storage, settings, progress.transfer), "fetch source"
        )
        progress.enter(Phase.ENCODING)
        await encode_audio(binary, input_path, result, spec.options, muxer=spec.muxer, threads=settings.FFMPEG_THREADS,
                           log_path=run.log_file)  # fmt: skip
    run.encode_speed = progress.speed
    progress.enter(Phase.UPLOADING)
    location = await runner.with_retries(
        lambda: runner.storage.put_file(spec.result, result, "application/octet-stream"), f"store the {spec.kind} result"
    )
    log.info("task.done", kind=spec.kind, index=spec.index, parent_id=task.parent_id)
    return location, None


async def take_parent_if_done(runner: JobRunner, worker_id: str, task: Job) -> Job | None:
    """After a task settled: write the job's progress (and renew its long lease); return the job, taken
    over by this worker, when every task is done or one failed, else None."""
    tasks = await runner.store.list_tasks(task.parent_id)
    if not tasks:
        return None
    lease = runner.settings.JOB_TIMEOUT_S
    held = await lifecycle.renew(runner.store, task.parent_id, TASKS_HOLDER, lease, progress=chunks_progress(tasks))
    if held is None:
        return None  # canceled, finished, or another worker is finishing it
    if any(t.status is JobStatus.FAILED or t.status is JobStatus.CANCELED for t in tasks) or all(
        t.status is JobStatus.COMPLETED for t in tasks
    ):
        parent = await lifecycle.take_from_tasks(runner.store, task.parent_id, worker_id, runner.settings.LEASE_SECONDS)
        if parent is not None:
            log.info("job.taken_back", job_id=parent.job_id, tasks=len(tasks))
        return parent
    return None
