"""The run of a POST /jobs job inside a worker: fetch and probe the source once, make every output
(media/outputs), store each output's files under `OUTPUT_PREFIX/<job_id>/<output name>/`, then the
list of every file (`files.json`) and one log holding all ffmpeg runs.

The record's per-output states ride on the lease keeper's writes (like progress). An output is marked
completed only once all its files are stored, and the API serves files of completed outputs only, so
a half-stored output is never visible. If any output failed, the job fails with that output's error
after the others were stored: they stay downloadable.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from mediaflow.jobs.model import Phase
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
from mediaflow.media.outputs import OutputResult, OutputsProgress, parse_outputs, run_outputs
from mediaflow.media.policy import check_input, check_output
from mediaflow.media.probe import MediaInfo, probe
from mediaflow.media.sources import fetch_source, parse_source
from mediaflow.storage.keys import output_key

log = get_logger("worker")


class Run(Protocol):
    """What this module uses of job_run.Run (a protocol: job_run imports this module)."""

    job: Any
    progress: Any
    phases: Any
    log_file: Path | None
    encode_speed: float | None

    def record(self, **changes: object) -> None: ...


class JobRunner(Protocol):
    """What this module uses of job_run.JobRunner."""

    settings: Any
    storage: Any
    store: Any

    async def with_retries(self, operation: Callable[[], Awaitable[Any]], what: str) -> Any: ...

    async def store_log(self, run: Any) -> str: ...

    async def flush(self, run: Any) -> None: ...


class OutputsFailedError(FfmpegError):
    """One or more outputs failed; the others were stored. Permanent: running again fails the same way."""


async def execute_outputs(runner: JobRunner, run: Run, workdir: Path) -> tuple[str, str]:
    """Make every output of the job on this worker (fetch and probe first)."""
    outputs = parse_outputs(json.loads(run.job.outputs_spec or "[]"))
    input_path, info = await fetch_and_probe(runner, run, workdir)
    return await make_outputs(runner, run, workdir, outputs, input_path, info)


async def fetch_and_probe(runner: JobRunner, run: Run, workdir: Path) -> tuple[Path, MediaInfo]:
    """The job's source as a local file, probed and checked against the input policy."""
    job, settings, progress = run.job, runner.settings, run.progress
    progress.enter(Phase.DOWNLOADING)
    run.phases.enter("job.download")
    source = parse_source(job.source, settings, runner.storage, job.owner)
    input_path = await runner.with_retries(
        lambda: fetch_source(source, workdir, runner.storage, settings, progress.transfer), "fetch source"
    )
    progress.enter(Phase.PROBING)
    run.phases.enter("job.probe")
    info = await probe(input_path, settings)
    check_input(info, None, settings)
    # A task records it on its own record too: harmless, and the run needs no job-or-task branch.
    run.record(source_media=SourceMedia.from_info(info, input_path.stat().st_size).model_dump_json())
    return input_path, info


async def make_outputs(
    runner: JobRunner, run: Run, workdir: Path, outputs: list, input_path: Path, info: MediaInfo
) -> tuple[str, str]:
    """Make `outputs` from the fetched source, store them, and fail the job if one failed."""
    progress = run.progress
    states = initial_states([{"name": o.name, "type": o.type} for o in outputs])
    run.record(outputs=encode_states(states))  # a retried job starts from fresh states
    results, out_dir = await encode_outputs(runner, run, workdir, outputs, input_path, info, states)
    run.log_file = combined_log(results, workdir / "ffmpeg.log")
    log_location = await runner.store_log(run)

    progress.enter(Phase.UPLOADING)
    run.phases.enter("job.upload")
    stored = await store_outputs(runner, run, results, {state.name: state for state in states}, out_dir)
    run.record(outputs=encode_states(states))
    await runner.flush(run)  # the final states are on the record before the job turns final
    raise_if_failed(states)
    return stored, log_location


async def encode_outputs(
    runner: JobRunner,
    run: Run,
    workdir: Path,
    outputs: list,
    input_path: Path,
    info: MediaInfo,
    states: list[OutputState],
) -> tuple[list[OutputResult], Path]:
    """Run ffmpeg for `outputs` into `<workdir>/outputs/`, keeping `states` and the run's progress current."""
    settings, progress = runner.settings, run.progress
    progress.enter(Phase.ENCODING)
    run.phases.enter("job.encode")
    out_dir = workdir / "outputs"
    limits = DecodeLimits.from_settings(settings)
    by_name = {state.name: state for state in states}

    async def on_progress(update: OutputsProgress) -> None:
        for name, value in update.outputs.items():
            state = by_name[name]
            if state.status in ("queued", "processing"):
                state.progress = min(99, int(value))
                state.status = "processing" if name == update.current and value < 100 else state.status
        progress.encoding_share(update.overall / 100, update.speed)
        run.record(outputs=encode_states(states))

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
    run.encode_speed = progress.speed
    await _check_durations(outputs, results, out_dir, info, settings, limits)
    return results, out_dir


def raise_if_failed(states: list[OutputState]) -> None:
    failed = [s for s in states if s.status != "completed"]
    if failed:
        first = failed[0]
        summary = f"output {first.name!r} failed: {first.error}"
        if len(failed) > 1:
            summary = f"{len(failed)} of {len(states)} outputs failed; " + summary
        raise OutputsFailedError(summary)


async def store_outputs(
    runner: JobRunner, run: Run, results: list[OutputResult], by_name: dict[str, OutputState], out_dir: Path
) -> str:
    """Store every completed output's files and the job's file list; returns the location of the first file."""
    total = sum(f.size for r in results if r.status == "completed" for f in r.files) or 1
    stored = 0

    def on_stored(size: int) -> None:
        nonlocal stored
        stored += size
        run.progress.transfer(stored, total)

    every_file: list[dict] = []
    for result in results:
        every_file += await store_result(runner, run, result, by_name[result.name], out_dir, on_stored=on_stored)
    await store_manifest(runner, run, out_dir, every_file)
    first = every_file[0]["path"] if every_file else None
    return runner.storage.location(output_key(runner.settings, run.job.job_id, first)) if first else ""


async def store_result(
    runner: JobRunner,
    run: Run,
    result: OutputResult,
    state: OutputState,
    out_dir: Path,
    *,
    skip: tuple[str, ...] = (),
    on_stored: Callable[[int], None] | None = None,
) -> list[dict]:
    """Store one output's files at their final keys and settle its state; returns every file stored (as
    dicts, for the job's file list). `skip`: paths kept local (a rendition task's own master playlist)."""
    settings, job = runner.settings, run.job
    owner_job = job.parent_id or job.job_id  # a task stores its output's files in its job's folder
    if result.status != "completed":
        state.status, state.error, state.notes, state.progress = "failed", result.error, result.notes, 0
        return []
    kept = [f for f in result.files if f.path not in skip]
    for file in kept:
        key = output_key(settings, owner_job, file.path)
        await runner.with_retries(
            lambda key=key, file=file: runner.storage.put_file(key, out_dir / file.path, file.mime_type),
            f"store {file.path}",
        )
        if on_stored is not None:
            on_stored(file.size)
    files = [OutputFileInfo(path=f.path, size=f.size, mime_type=f.mime_type) for f in kept]
    state.files, state.segments = split_files(files)
    state.status, state.progress, state.notes = "completed", 100, result.notes
    state.quality = result.quality
    state.crf_search = CrfSearchInfo.model_validate(result.crf_search) if result.crf_search else None
    return [f.model_dump() for f in files]


async def store_manifest(runner: JobRunner, run: Run, out_dir: Path, every_file: list[dict]) -> None:
    """`files.json`: every file of the job (segments included), for downloads of the whole job."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / FILES_MANIFEST
    manifest.write_text(json.dumps({"files": every_file}))
    await runner.with_retries(
        lambda: runner.storage.put_file(
            output_key(runner.settings, run.job.job_id, FILES_MANIFEST), manifest, "application/json"
        ),
        "store the file list",
    )


async def _check_durations(
    outputs: list, results: list[OutputResult], out_dir: Path, info: Any, settings: Any, limits: DecodeLimits
) -> None:
    """ffmpeg can exit 0 on a damaged source (a truncated faststart MP4 decodes until its data ends):
    a whole-source video or audio output much shorter than the source fails as damaged input."""
    for spec, result in zip(outputs, results, strict=True):
        if result.status != "completed" or spec.type not in ("video", "audio") or spec.clip is not None:
            continue
        try:
            made = await probe(out_dir / result.files[0].path, settings)
            limits.check_decoded_duration(made.duration)
            check_output(made, info)
        except ProbeError as exc:
            result.status, result.error = "failed", str(exc)


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
