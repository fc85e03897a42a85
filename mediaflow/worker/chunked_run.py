"""The parent side of a `"parallel": true` video output (chunked encoding across workers).

The worker that claims such a job splits it: fetch and probe the source, plan chunks on keyframes,
split them by stream copy, store the pieces under the job's `.tasks/` folder, and create one chunk task
per piece plus one audio task; `HandedToTasks` then tells job_run to hand the job to TASKS_HOLDER and
publish the tasks (in that order, so a task that finishes at once finds the job to take back).
The worker that finishes the last task takes the job back and runs it again: this time every task is
done, so it joins the encoded chunks with the audio, checks the join against the source, publishes the
output like any other (falling back to one encode of the whole source if the check fails), and
removes the pieces. A job taken back with a failed task fails with that task's error.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mediaflow.jobs import lifecycle
from mediaflow.jobs.model import Job, JobStatus, Phase
from mediaflow.jobs.outputs import SourceMedia, encode_states, initial_states
from mediaflow.jobs.tasks import TaskSpec, new_task, task_spec
from mediaflow.logs import get_logger
from mediaflow.media.chunking import (
    ChunkingError,
    join,
    plan_chunks,
    split,
    verify_join,
)
from mediaflow.media.errors import FfmpegError
from mediaflow.media.inputs import ffmpeg_binary
from mediaflow.media.limits import DecodeLimits
from mediaflow.media.outputs import OutputResult, parse_outputs, run_outputs
from mediaflow.media.outputs.audio import audio_args
from mediaflow.media.outputs.files import list_files
from mediaflow.media.outputs.plan import Source
from mediaflow.media.outputs.spec import VideoOutput, default_audio_codec
from mediaflow.media.outputs.video import VIDEO_MUXERS, video_codec_args, video_filters
from mediaflow.media.policy import check_input
from mediaflow.media.probe import MediaInfo, probe
from mediaflow.media.sources import fetch_source, parse_source
from mediaflow.media.timeline import read_timeline
from mediaflow.storage.keys import task_key
from mediaflow.worker.outputs_run import (
    JobRunner,
    Run,
    combined_log,
    execute_outputs,
    store_outputs,
)

log = get_logger("worker")


class HandedToTasks(Exception):
    """The job's work is out in task records; `queued` are the ids still to publish."""

    def __init__(self, queued: list[str]) -> None:
        super().__init__(f"{len(queued)} tasks to publish")
        self.queued = queued


class TaskFailedError(FfmpegError):
    """A chunk or audio task failed for good; the job fails with its error (permanent)."""


def parallel_output(job: Job) -> VideoOutput | None:
    """The job's chunked video output, if it has one (then it is the job's only output)."""
    outputs = parse_outputs(json.loads(job.outputs_spec or "[]"))
    return outputs[0] if len(outputs) == 1 and isinstance(outputs[0], VideoOutput) and outputs[0].parallel else None


async def run_parallel(runner: JobRunner, run: Run, workdir: Path, output: VideoOutput) -> tuple[str, str]:
    """Split the job into tasks, wait for them (HandedToTasks), or join them once all are done."""
    job = run.job
    tasks = await runner.store.list_tasks(job.job_id)
    if tasks and len(tasks) != task_spec(tasks[0]).total:  # a split that died half-way: start over
        for task in tasks:
            await runner.store.delete(task.job_id)
        tasks = []
    if not tasks:
        try:
            queued = await _split(runner, run, workdir, output)
        except ChunkingError as exc:
            log.warning("job.not_chunked", reason=str(exc))  # e.g. no keyframe to cut on: one encode does it
            return await execute_outputs(runner, run, workdir)
        raise HandedToTasks(queued)
    failed = [t for t in tasks if t.status in (JobStatus.FAILED, JobStatus.CANCELED)]
    if failed:
        for task in tasks:  # the job fails: its other tasks stop at their next lease renewal
            if not task.status.is_final:
                await lifecycle.cancel(runner.store, task)
        await _remove_pieces(runner, job, tasks)
        raise TaskFailedError(f"{task_spec(failed[0]).kind} task failed: {failed[0].error or failed[0].status.value}")
    if any(t.status is not JobStatus.COMPLETED for t in tasks):
        return_to = [t.job_id for t in tasks if t.status is JobStatus.QUEUED]
        raise HandedToTasks(return_to)  # taken back early (re-queued parent): its tasks still run
    return await _join(runner, run, workdir, output, tasks)


async def _fetch_and_probe(runner: JobRunner, run: Run, workdir: Path) -> tuple[Path, MediaInfo]:
    job, settings, progress = run.job, runner.settings, run.progress
    progress.enter(Phase.DOWNLOADING)
    source = parse_source(job.source, settings, runner.storage, job.owner)
    input_path = await runner.with_retries(
        lambda: fetch_source(source, workdir, runner.storage, settings, progress.transfer), "fetch source"
    )
    progress.enter(Phase.PROBING)
    info = await probe(input_path, settings)
    check_input(info, None, settings)
    return input_path, info


async def _split(runner: JobRunner, run: Run, workdir: Path, output: VideoOutput) -> list[str]:
    job, settings = run.job, runner.settings
    states = initial_states([{"name": output.name, "type": output.type}])
    input_path, info = await _fetch_and_probe(runner, run, workdir)
    run.record(outputs=encode_states(states),
               source_media=SourceMedia.from_info(info, input_path.stat().st_size).model_dump_json())  # fmt: skip
    ffmpeg = ffmpeg_binary(settings)
    timeline = await read_timeline(input_path)
    if timeline.video is None:
        raise ChunkingError("the source has no video")
    run.progress.enter(Phase.ENCODING)
    chunks = plan_chunks(timeline.video, settings.CHUNK_SECONDS)
    pieces = await split(ffmpeg, input_path, chunks, workdir / "split")
    source = Source(input_path, info, ffmpeg, settings.FFMPEG_THREADS)
    vf, _ = video_filters(output.video, source.need_video(f"video output {output.name!r}"))
    video_options = [*(["-vf", vf] if vf else []), *video_codec_args(output.video)]
    with_audio = output.audio is not False and info.audio is not None
    total = len(chunks) + (1 if with_audio else 0)
    specs = []
    for chunk, piece in zip(chunks, pieces, strict=True):
        key = task_key(settings, job.job_id, piece.name)
        await runner.with_retries(lambda k=key, p=piece: runner.storage.put_file(k, p, "video/mp4"), f"store {piece.name}")
        specs.append(TaskSpec.of_chunk(chunk, total=total, piece=key, options=video_options,
                                       result=task_key(settings, job.job_id, f"encoded{chunk.index:05d}.mp4")))  # fmt: skip
    if with_audio:
        codec = output.audio.codec or default_audio_codec(output.format)
        specs.append(TaskSpec(kind="audio", total=total, result=task_key(settings, job.job_id, "audio"),
                              options=audio_args(output.audio, codec, source, None), muxer=VIDEO_MUXERS[output.format]))
    tasks = [new_task(job, spec) for spec in specs]
    for task in tasks:
        await runner.store.create(task)
    log.info("job.split", chunks=len(chunks), tasks=len(tasks), chunk_seconds=settings.CHUNK_SECONDS)
    return [task.job_id for task in tasks]


async def _join(runner: JobRunner, run: Run, workdir: Path, output: VideoOutput, tasks: list[Job]) -> tuple[str, str]:
    settings, job = runner.settings, run.job
    input_path, info = await _fetch_and_probe(runner, run, workdir)
    run.progress.enter(Phase.ENCODING)
    specs = sorted((task_spec(t) for t in tasks), key=lambda s: (s.kind != "chunk", s.index))
    encoded_dir, out_dir = workdir / "encoded", workdir / "outputs"
    encoded_dir.mkdir()
    encoded, audio = [], None
    for spec in specs:
        local = encoded_dir / (f"chunk{spec.index:05d}.mp4" if spec.kind == "chunk" else "audio")
        await runner.with_retries(lambda k=spec.result, p=local: runner.storage.get_file(k, p), f"fetch {local.name}")
        if spec.kind == "chunk":
            encoded.append(local)
        else:
            audio = local
    final = out_dir / output.name / f"{output.name}.{output.format}"
    final.parent.mkdir(parents=True)
    faststart = ["-movflags", "+faststart"] if output.faststart and output.format in ("mp4", "mov") else []
    run.log_file = workdir / "ffmpeg.log"
    await join(ffmpeg_binary(settings), encoded, final, audio=audio, muxer=VIDEO_MUXERS[output.format],
               output_options=faststart, log_path=run.log_file)  # fmt: skip
    checked = await verify_join(final, await read_timeline(input_path), audio=audio is not None)
    workers = len({t.worker_id for t in tasks})
    if checked.ok:
        note = f"encoded in {len(encoded)} chunks on {workers} worker(s), joined and checked against the source"
        result = OutputResult(output.name, output.type, "completed", files=list_files(final.parent, prefix=output.name),
                              notes=[note])  # fmt: skip
        log.info("job.joined", chunks=len(encoded), workers=workers, **checked.figures)
    else:
        # Why: an open-GOP source or odd timestamps can make a join that does not match frame for frame;
        # the promise is the single encode's output, so make that instead and say why.
        why = "; ".join(checked.problems)
        log.warning("job.join_mismatch", problems=why, **checked.figures)
        shutil.rmtree(out_dir, ignore_errors=True)
        single = output.model_copy(update={"parallel": False})
        [result] = await run_outputs([single], input_path=input_path, info=info, workdir=out_dir,
                                     ffmpeg=ffmpeg_binary(settings), threads=settings.FFMPEG_THREADS,
                                     limits=DecodeLimits.from_settings(settings))  # fmt: skip
        result.notes.append(f"the joined chunks did not match the source ({why}); encoded in one piece instead")
        run.log_file = combined_log([result], workdir / "ffmpeg.log")
    states = initial_states([{"name": output.name, "type": output.type}])
    log_location = await runner.store_log(run)
    run.progress.enter(Phase.UPLOADING)
    stored = await store_outputs(runner, run, [result], {output.name: states[0]}, out_dir)
    run.record(outputs=encode_states(states))
    await runner.flush(run)
    await _remove_pieces(runner, job, tasks)
    if result.status != "completed":
        raise TaskFailedError(f"output {output.name!r} failed: {result.error}")
    return stored, log_location


async def _remove_pieces(runner: JobRunner, job: Job, tasks: list[Job]) -> None:
    """The split pieces and encoded chunks are only for the join: remove them (a failure only logs)."""
    for task in tasks:
        spec = task_spec(task)
        for key in filter(None, (spec.piece, spec.result)):
            try:
                await runner.storage.delete(key)
            except Exception as exc:  # noqa: BLE001  (any storage trouble: the job's result stands)
                log.warning("task.piece_not_removed", key=key, error=str(exc))
