"""A job's outputs made on this worker: fetch and probe the source once, make every output
(media/outputs), store each output's files under `OUTPUT_PREFIX/<job_id>/<output name>/`, then the
list of every file (`files.json`) and one log holding all ffmpeg runs.

A POST /process job is a one-output job from its method's template; its one file keeps the seed's key,
`OUTPUT_PREFIX/<job_id>/<source stem>_<method>.<ext>`, and its error is that output's own.

The record's per-output states ride on the lease keeper's writes (like progress). An output is marked
completed only once all its files are stored, and the API serves files of completed outputs only, so
a half-stored output is never visible. If any output failed, the job fails with that output's error
after the others were stored: they stay downloadable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from mediaflow.jobs.events import FailureReason
from mediaflow.jobs.model import Job, Method, Phase
from mediaflow.jobs.outputs import (
    FILES_MANIFEST,
    CrfSearchInfo,
    OutputFileInfo,
    OutputState,
    SourceMedia,
    encode_states,
    initial_states,
    split_files,
)
from mediaflow.logs import get_logger
from mediaflow.media.errors import FfmpegError, ProbeError
from mediaflow.media.inputs import ffmpeg_binary
from mediaflow.media.limits import DecodeLimits
from mediaflow.media.outputs import OutputFile, OutputResult, OutputSpec, OutputsProgress, run_outputs
from mediaflow.media.policy import check_input, check_output
from mediaflow.media.probe import MediaInfo, probe
from mediaflow.media.sources import fetch_source, parse_source
from mediaflow.storage.keys import output_key
from mediaflow.worker.outcomes import Done
from mediaflow.worker.run_context import RunContext

log = get_logger("worker")


class OutputsFailedError(FfmpegError):
    """One or more outputs failed; the others were stored. Permanent: running again fails the same way.
    `reason`: the failure's class for metrics (a source found damaged is the input's fault)."""

    def __init__(self, message: str, reason: FailureReason = FailureReason.FFMPEG) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class FetchedSource:
    path: Path  # the local copy in the work dir
    info: MediaInfo
    name: str  # the source's own file name (a /process output is named after it)


async def fetch_and_probe(ctx: RunContext) -> FetchedSource:
    """The record's source as a local file, probed and checked against the input policy (a /process
    job's method says which streams it needs, with the seed's words)."""
    job, settings, progress = ctx.job, ctx.settings, ctx.progress
    ctx.enter(Phase.DOWNLOADING)
    source = parse_source(job.source, settings, ctx.storage, job.owner)
    input_path = await ctx.with_retries(
        lambda: fetch_source(source, ctx.workdir, ctx.storage, settings, progress.transfer), "fetch source"
    )
    ctx.enter(Phase.PROBING)
    info = await probe(input_path, settings)
    check_input(info, job.method_name, settings.limits)
    # A task records it on its own record too: harmless, and the run needs no job-or-task branch.
    ctx.record(source_media=SourceMedia.from_info(info, input_path.stat().st_size).model_dump_json())
    return FetchedSource(input_path, info, source.name)


async def make_outputs(ctx: RunContext, outputs: Sequence[OutputSpec], source: FetchedSource) -> Done:
    """Make `outputs` from the fetched source, store them, and fail the job if one failed."""
    states = initial_states([{"name": o.name, "type": o.type} for o in outputs])
    ctx.record(outputs=encode_states(states))  # a retried job starts from fresh states
    encoded = await encode_outputs(ctx, outputs, source.path, source.info, states)
    results, out_dir = encoded.results, encoded.out_dir
    if ctx.job.method_name is not None:
        _name_as_seed_output(results[0], out_dir, source.name, ctx.job.method_name)
    ctx.log_file = combined_log(results, ctx.workdir / "ffmpeg.log")
    log_location = await ctx.store_log()

    ctx.enter(Phase.UPLOADING)
    # A /process job's folder keeps the seed's shape (its file and its log): its one file is listed on the record.
    with_manifest = ctx.job.method_name is None
    stored = await store_outputs(ctx, results, {s.name: s for s in states}, out_dir, with_manifest=with_manifest)
    ctx.record(outputs=encode_states(states))
    await ctx.flush()  # the final states are on the record before the job turns final
    raise_if_failed(ctx.job, states, {r.name for r in results if r.input_fault})
    return Done(stored, log_location)


@dataclass(frozen=True)
class Encoded:
    results: list[OutputResult]  # in the order of the outputs
    out_dir: Path  # where their files are: `<out_dir>/<file path>`


async def encode_outputs(
    ctx: RunContext, outputs: Sequence[OutputSpec], input_path: Path, info: MediaInfo, states: list[OutputState]
) -> Encoded:
    """Run ffmpeg for `outputs` into `<workdir>/outputs/`, keeping `states` and the run's progress current."""
    settings, progress = ctx.settings, ctx.progress
    ctx.enter(Phase.ENCODING)
    out_dir = ctx.workdir / "outputs"
    limits = DecodeLimits.from_settings(settings)
    by_name = {state.name: state for state in states}
    # One output of the whole source (every /process job) advances with the source's seconds, so it has
    # an ETA, as the seed's jobs always had; several outputs' runs differ too much in speed for one.
    whole_source_s = info.duration if len(outputs) == 1 and getattr(outputs[0], "clip", None) is None else None

    async def on_progress(update: OutputsProgress) -> None:
        for name, value in update.outputs.items():
            state = by_name[name]
            if state.status in ("queued", "processing"):
                state.progress = min(99, int(value))
                state.status = "processing" if name == update.current and value < 100 else state.status
        if whole_source_s:
            progress.encoding(update.overall / 100 * whole_source_s, whole_source_s, update.speed)
        else:
            progress.encoding_share(update.overall / 100, update.speed)
        ctx.record(outputs=encode_states(states))

    log.info("outputs.started", outputs=len(outputs), duration_s=info.duration)
    results = await run_outputs(
        outputs,
        input_path=input_path,
        info=info,
        workdir=out_dir,
        ffmpeg=ffmpeg_binary(settings),
        threads=settings.FFMPEG_THREADS,
        limits=limits,
        on_progress=on_progress,
    )
    ctx.encode_speed = progress.speed
    await _check_durations(ctx, outputs, results, out_dir, info, limits)
    return Encoded(results, out_dir)


def _name_as_seed_output(result: OutputResult, out_dir: Path, source_name: str, method: Method) -> None:
    """A /process job's one file is `<source stem>_<method>.<ext>` at the top of its job's folder (the
    seed's key, which its /download and every stored link already use)."""
    if result.status != "completed":
        return
    [made] = result.files
    extension = made.path.rpartition(".")[2]
    seed_name = f"{Path(source_name).stem or 'output'}_{Method(method).value}.{extension}"
    (out_dir / made.path).rename(out_dir / seed_name)
    result.files = [OutputFile(seed_name, made.size, made.mime_type)]


def raise_if_failed(job: Job, states: list[OutputState], input_faults: Collection[str] = ()) -> None:
    """Fail the job when an output failed, with the first failure's error; `input_faults`: outputs that
    failed because of the source (the failure's class, for metrics)."""
    failed = [s for s in states if s.status != "completed"]
    if not failed:
        return
    first = failed[0]
    reason = FailureReason.INVALID_INPUT if first.name in input_faults else FailureReason.FFMPEG
    if job.method_name is not None:  # a /process job has one output: its error is the job's, as the seed said it
        raise OutputsFailedError(first.error or "the output was not made", reason)
    summary = f"output {first.name!r} failed: {first.error}"
    if len(failed) > 1:
        summary = f"{len(failed)} of {len(states)} outputs failed; " + summary
    raise OutputsFailedError(summary, reason)


async def store_outputs(
    ctx: RunContext,
    results: list[OutputResult],
    by_name: dict[str, OutputState],
    out_dir: Path,
    *,
    with_manifest: bool = True,
) -> str:
    """Store every completed output's files and (`with_manifest`) the job's file list; returns the location
    of the first file."""
    total = sum(f.size for r in results if r.status == "completed" for f in r.files) or 1
    stored = 0

    def on_stored(size: int) -> None:
        nonlocal stored
        stored += size
        ctx.progress.transfer(stored, total)

    every_file: list[dict] = []
    for result in results:
        every_file += await store_result(ctx, result, by_name[result.name], out_dir, on_stored=on_stored)
    if with_manifest:
        await store_manifest(ctx, out_dir, every_file)
    first = every_file[0]["path"] if every_file else None
    return ctx.storage.location(output_key(ctx.settings, ctx.job.job_id, first)) if first else ""


async def store_result(
    ctx: RunContext,
    result: OutputResult,
    state: OutputState,
    out_dir: Path,
    *,
    skip: tuple[str, ...] = (),
    on_stored: Callable[[int], None] | None = None,
) -> list[dict]:
    """Store one output's files at their final keys and settle its state; returns every file stored (as
    dicts, for the job's file list). `skip`: paths kept local (a rendition task's own master playlist)."""
    job = ctx.job
    owner_job = job.parent_id or job.job_id  # a task stores its output's files in its job's folder
    if result.status != "completed":
        state.status, state.error, state.notes, state.progress = "failed", result.error, result.notes, 0
        return []
    kept = [f for f in result.files if f.path not in skip]
    for file in kept:
        await _store_file(ctx, output_key(ctx.settings, owner_job, file.path), out_dir / file.path, file.mime_type)
        if on_stored is not None:
            on_stored(file.size)
    files = [OutputFileInfo(path=f.path, size=f.size, mime_type=f.mime_type) for f in kept]
    state.files, state.segments = split_files(files)
    state.status, state.progress, state.notes = "completed", 100, result.notes
    state.quality = result.quality
    state.crf_search = CrfSearchInfo.model_validate(result.crf_search) if result.crf_search else None
    return [f.model_dump() for f in files]


async def _store_file(ctx: RunContext, key: str, path: Path, mime_type: str) -> str:
    return await ctx.with_retries(lambda: ctx.storage.put_file(key, path, mime_type), f"store {path.name}")


async def store_manifest(ctx: RunContext, out_dir: Path, every_file: list[dict]) -> None:
    """`files.json`: every file of the job (segments included), for downloads of the whole job."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / FILES_MANIFEST
    manifest.write_text(json.dumps({"files": every_file}))
    key = output_key(ctx.settings, ctx.job.job_id, FILES_MANIFEST)
    await ctx.with_retries(lambda: ctx.storage.put_file(key, manifest, "application/json"), "store the file list")


async def _check_durations(
    ctx: RunContext,
    outputs: Sequence[OutputSpec],
    results: list[OutputResult],
    out_dir: Path,
    info: MediaInfo,
    limits: DecodeLimits,
) -> None:
    """ffmpeg can exit 0 on a damaged source (a truncated faststart MP4 decodes until its data ends):
    a whole-source video or audio output much shorter than the source fails as damaged input."""
    for spec, result in zip(outputs, results, strict=True):
        if result.status != "completed" or spec.type not in ("video", "audio") or spec.clip is not None:
            continue
        try:
            made = await probe(out_dir / result.files[0].path, ctx.settings)
            limits.check_decoded_duration(made.duration)
            check_output(made, info)
        except ProbeError as exc:
            result.status, result.error, result.input_fault = "failed", str(exc), True


def combined_log(results: list[OutputResult], path: Path) -> Path:
    """One log for the job (GET /jobs/{id}/log): every ffmpeg run's stderr under a header naming it."""
    with open(path, "wb") as combined:
        for result in results:
            for run_log in result.logs:
                combined.write(f"===== {run_log.stem} ({result.status}) =====\n".encode())
                if run_log.exists():
                    combined.write(run_log.read_bytes())
                combined.write(b"\n")
    return path
