"""A video output encoded in chunks across workers: its tasks when the job is split, its join at the end.

Split (on the worker that claimed the job, which has the source): plan chunks on keyframes over the
output's clip, cut them by stream copy, store the pieces under the job's `.tasks/` folder, and describe
one chunk task per piece plus one audio task. What must be decided once per output is decided here,
not per chunk: the CRF for `video.target_vmaf` (searched on samples of the source) and the loudness
measurement for `audio.loudness` (baked into the audio task's filter).
Join (on the worker that took the job back once every task was done): fetch the encoded chunks and the
audio, concatenate them by stream copy, check the result against the source (frames, duration, A/V,
timestamps) and measure its quality if asked; if the check fails, encode the output in one piece
instead and say why.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mediaflow.jobs.outputs import CrfSearchInfo, OutputState
from mediaflow.jobs.tasks import TaskSpec
from mediaflow.logs import get_logger
from mediaflow.media.chunking import ChunkingError, join, plan_chunks, split, verify_join
from mediaflow.media.ffmpeg import check, run_ffmpeg
from mediaflow.media.inputs import ffmpeg_binary
from mediaflow.media.limits import DecodeLimits
from mediaflow.media.outputs import OutputResult, run_outputs
from mediaflow.media.outputs.audio import Loudness, loudness_key, measure_step, parse_loudness
from mediaflow.media.outputs.executor import LOG_DIR
from mediaflow.media.outputs.files import list_files
from mediaflow.media.outputs.measured import measure_output, search_target_crf
from mediaflow.media.outputs.plan import Source, clip_range
from mediaflow.media.outputs.spec import VideoOutput
from mediaflow.media.outputs.video import VIDEO_MUXERS, chunk_audio_args, chunk_video_args, video_plan
from mediaflow.media.probe import MediaInfo
from mediaflow.media.timeline import read_timeline
from mediaflow.settings import Settings
from mediaflow.storage.keys import task_key
from mediaflow.worker.run_context import RunContext

log = get_logger("worker")


def _source(settings: Settings, input_path: Path, info: MediaInfo) -> Source:
    return Source(
        input_path,
        info,
        ffmpeg_binary(settings),
        settings.FFMPEG_THREADS,
        tuple(DecodeLimits.from_settings(settings).input_options()),
    )


def _clip(output: VideoOutput, source: Source) -> tuple[float, float | None]:
    start, duration = clip_range(output.clip, source)
    return start, None if duration is None else start + duration


async def chunk_tasks(
    ctx: RunContext,
    output: VideoOutput,
    input_path: Path,
    info: MediaInfo,
    state: OutputState,
) -> list[TaskSpec]:
    """The chunk and audio tasks of `output` (their `total` is set by the caller). Raises ChunkingError
    when the source cannot be cut (no keyframes): the caller makes the output whole instead."""
    settings, job, workdir = ctx.settings, ctx.job, ctx.workdir
    source = _source(settings, input_path, info)
    timeline = await read_timeline(input_path)
    if timeline.video is None:
        raise ChunkingError("the source has no video")
    clip_start, clip_end = _clip(output, source)
    chunks = plan_chunks(timeline.video, settings.CHUNK_SECONDS, clip_start, clip_end)
    if output.video.target_vmaf is not None:  # once per output, before any chunk is encoded
        searched = await search_target_crf(output, source, workdir / "search" / output.name)
        output, state.crf_search = searched.output, CrfSearchInfo.model_validate(searched.report)
        state.notes.append(f"video.target_vmaf {searched.report['target_vmaf']:g}: CRF {searched.report['crf']} chosen")
    pieces = await split(source.ffmpeg, input_path, chunks, workdir / "split" / output.name)
    video_options = chunk_video_args(output, source)
    specs = []
    for chunk, piece in zip(chunks, pieces, strict=True):
        key = task_key(settings, job.job_id, f"{output.name}.{piece.name}")
        await _store_piece(ctx, key, piece)
        result = task_key(settings, job.job_id, f"{output.name}.encoded{chunk.index:05d}.mp4")
        specs.append(
            TaskSpec.of_chunk(chunk, total=0, output=output.name, piece=key, options=video_options, result=result)
        )
    measured = await _measure_loudness(output, source, workdir)
    state.notes += video_plan(output, source, workdir, measured).notes  # what a whole encode would say
    audio_options = chunk_audio_args(output, source, measured)
    if audio_options is not None:
        specs.append(
            TaskSpec(
                kind="audio",
                total=0,
                output=output.name,
                result=task_key(settings, job.job_id, f"{output.name}.audio"),
                options=audio_options,
                muxer=VIDEO_MUXERS[output.format],
                clip_start=clip_start,
                clip_end=clip_end,
            )
        )
    log.info("output.split", output=output.name, chunks=len(chunks), chunk_seconds=settings.CHUNK_SECONDS)
    return specs


async def _store_piece(ctx: RunContext, key: str, piece: Path) -> None:
    await ctx.with_retries(lambda: ctx.storage.put_file(key, piece, "video/mp4"), f"store {piece.name}")


async def _measure_loudness(output: VideoOutput, source: Source, workdir: Path) -> Loudness | None:
    """audio.loudness: measure the source's loudness once (the first loudnorm pass); None if not asked."""
    if output.audio is False or output.audio.loudness is None:
        return None
    key = loudness_key(output.audio, output.clip, source)
    if key is None:
        return None
    step = measure_step(key, source)
    log_path = workdir / f"{output.name}.loudness.log"
    ran = await run_ffmpeg(step.argv, log_path=log_path)
    check(ran)
    return parse_loudness(ran.log)


async def join_chunks(
    ctx: RunContext,
    output: VideoOutput,
    specs: list[TaskSpec],
    input_path: Path,
    info: MediaInfo,
    state: OutputState,
) -> tuple[OutputResult, Path]:
    """Join the output's encoded chunks with its audio, check, measure; returns the result and its folder."""
    settings, workdir = ctx.settings, ctx.workdir
    source = _source(settings, input_path, info)
    clip_start, clip_end = _clip(output, source)
    encoded_dir, out_dir = workdir / "encoded" / output.name, workdir / "outputs"
    encoded_dir.mkdir(parents=True)
    encoded, audio = [], None
    for spec in sorted(specs, key=lambda s: (s.kind != "chunk", s.index)):
        local = encoded_dir / (f"chunk{spec.index:05d}.mp4" if spec.kind == "chunk" else "audio")
        await _fetch(ctx, spec.result, local)
        if spec.kind == "chunk":
            encoded.append(local)
        else:
            audio = local
    final = out_dir / output.name / f"{output.name}.{output.format}"
    final.parent.mkdir(parents=True)
    faststart = ["-movflags", "+faststart"] if output.faststart and output.format in ("mp4", "mov") else []
    log_dir = out_dir / LOG_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    join_log = log_dir / f"{output.name}.join.log"
    await join(
        source.ffmpeg,
        encoded,
        final,
        audio=audio,
        muxer=VIDEO_MUXERS[output.format],
        output_options=faststart,
        log_path=join_log,
    )
    checked = await verify_join(
        final, await read_timeline(input_path), clip_start=clip_start, clip_end=clip_end, audio=audio is not None
    )
    if checked.ok:
        note = f"encoded in {len(encoded)} chunks, joined and checked against the source"
        result = OutputResult(
            output.name, output.type, "completed", files=[], logs=[join_log], notes=[*state.notes, note]
        )
        if state.crf_search is not None or output.quality:
            await _measure(output, source, final, workdir, result, state)
        result.files = list_files(final.parent, prefix=output.name)
        log.info("output.joined", output=output.name, chunks=len(encoded), **checked.figures)
        return result, out_dir
    # Why: an open-GOP source or odd timestamps can make a join that does not match frame for frame;
    # the promise is the single encode's output, so make that instead and say why.
    why = "; ".join(checked.problems)
    log.warning("output.join_mismatch", output=output.name, problems=why, **checked.figures)
    shutil.rmtree(final.parent, ignore_errors=True)
    whole = output.model_copy(update={"parallel": False})
    if state.crf_search is not None:  # the CRF was searched at the split: keep it
        whole = whole.model_copy(
            update={"video": whole.video.model_copy(update={"target_vmaf": None, "crf": state.crf_search.crf})}
        )
    [result] = await run_outputs(
        [whole],
        input_path=input_path,
        info=info,
        workdir=out_dir,
        ffmpeg=source.ffmpeg,
        threads=settings.FFMPEG_THREADS,
        limits=DecodeLimits.from_settings(settings),
    )
    result.notes.append(f"the joined chunks did not match the source ({why}); encoded in one piece instead")
    return result, out_dir


async def _fetch(ctx: RunContext, key: str, local: Path) -> None:
    await ctx.with_retries(lambda: ctx.storage.get_file(key, local), f"fetch {local.name}")


async def _measure(
    output: VideoOutput, source: Source, final: Path, workdir: Path, result: OutputResult, state: OutputState
) -> None:
    metrics = list(dict.fromkeys([*(output.quality or []), *(["vmaf"] if state.crf_search is not None else [])]))
    result.quality = await measure_output(
        output, source, final, final.parent, workdir / "measure" / output.name, metrics
    )
    if state.crf_search is not None:
        result.crf_search = {**state.crf_search.model_dump(), "vmaf": result.quality["vmaf"]["mean"]}
