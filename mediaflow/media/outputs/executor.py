"""Running a job's outputs: one after another, each into its own folder, with progress and logs.

Each output is built in `<workdir>/.partial/<name>/` and renamed to `<workdir>/<name>/` only once
all its runs succeeded, so a folder that exists is complete. An output that fails (ffmpeg error, or
something the source cannot give) is reported with its error and its partial files removed; the
others still run, and the finished ones stay. Cancellation (and any unexpected error) propagates:
ffmpeg is killed by `run_ffmpeg`, and the caller decides what to do with the job.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mediaflow.logs import get_logger
from mediaflow.media.errors import FfmpegError, ProbeError
from mediaflow.media.ffmpeg import ProgressUpdate, check, run_ffmpeg
from mediaflow.media.limits import DecodeLimits
from mediaflow.media.outputs.audio import Loudness, LoudnessKey, audio_plan, loudness_key, measure_step, parse_loudness
from mediaflow.media.outputs.files import OutputFile, list_files
from mediaflow.media.outputs.images import animation_plan, storyboard_plan, thumbnails_plan, waveform_plan
from mediaflow.media.outputs.ladder import stream_plan
from mediaflow.media.outputs.measured import measure_output, search_target_crf
from mediaflow.media.outputs.plan import OutputError, OutputPlan, Source, Step
from mediaflow.media.outputs.spec import AudioOutput, OutputSpec, VideoOutput
from mediaflow.media.outputs.video import video_plan
from mediaflow.media.probe import MediaInfo

log = get_logger("outputs")

LOG_DIR = ".logs"
PARTIAL_DIR = ".partial"
SEARCH_DIR = ".measure"  # CRF-search probes and quality logs, per output; never stored


@dataclass
class OutputResult:
    name: str
    type: str
    status: str  # "completed" | "failed"
    error: str | None = None
    files: list[OutputFile] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time spent on it
    quality: dict | None = None  # {"vmaf": {"mean", "min", "p5"}, ...} when measured
    crf_search: dict | None = None  # with video.target_vmaf: the CRF chosen, its probes, the VMAF measured
    input_fault: bool = False  # failed because of the source (a decode limit hit, damaged media), not ffmpeg


@dataclass
class OutputsProgress:
    overall: float  # 0-100, weighted by each output's estimated cost
    outputs: dict[str, float]  # name → 0-100
    current: str | None  # the output running now
    speed: float | None  # ffmpeg's speed on the current run


ProgressCallback = Callable[[OutputsProgress], Awaitable[None]]


def plan_output(output: OutputSpec, source: Source, out_dir: Path, measured: Loudness | None) -> OutputPlan:
    if output.type == "video":
        return video_plan(output, source, out_dir, measured)
    if output.type == "audio":
        return audio_plan(output, source, out_dir, measured)
    if output.type in ("hls", "dash"):
        return stream_plan(output, source, out_dir)
    if output.type == "thumbnails":
        return thumbnails_plan(output, source, out_dir)
    if output.type == "storyboard":
        return storyboard_plan(output, source, out_dir)
    if output.type == "animation":
        return animation_plan(output, source, out_dir)
    if output.type == "waveform":
        return waveform_plan(output, source, out_dir)
    raise ValueError(f"unknown output type {output.type!r}")  # the spec's union makes this unreachable


def _loudness_key(output: OutputSpec, source: Source) -> LoudnessKey | None:
    if isinstance(output, (VideoOutput, AudioOutput)) and output.audio is not False:
        try:
            return loudness_key(output.audio, output.clip, source)
        except OutputError:
            return None  # the clip itself is refused when the output is planned
    return None


class _Progress:
    """Per-output and overall progress; overall is weighted by each output's estimated cost."""

    def __init__(
        self, outputs: Sequence[OutputSpec], weights: dict[str, float], callback: ProgressCallback | None
    ) -> None:
        self.weights = weights
        self.done: dict[str, float] = {o.name: 0.0 for o in outputs}
        self.callback = callback

    async def report(self, name: str | None, value: float | None = None, speed: float | None = None) -> None:
        if name is not None and value is not None:
            self.done[name] = max(self.done[name], min(100.0, value))
        if self.callback is None:
            return
        total = sum(self.weights.values()) or 1.0
        overall = sum(self.done[n] * w for n, w in self.weights.items()) / total
        await self.callback(OutputsProgress(round(overall, 1), dict(self.done), name, speed))


async def run_outputs(
    outputs: Sequence[OutputSpec],
    *,
    input_path: Path,
    info: MediaInfo,
    workdir: Path,
    ffmpeg: str,
    threads: int = 0,
    limits: DecodeLimits | None = None,
    on_progress: ProgressCallback | None = None,
) -> list[OutputResult]:
    """Make every output from one local input (probed as `info`); results come in the order of `outputs`.
    `limits`: the decode limits every run gets (a run that hits one fails its output with the reason)."""
    source = Source(Path(input_path), info, ffmpeg, threads, tuple(limits.input_options()) if limits else ())
    workdir = Path(workdir)
    (workdir / LOG_DIR).mkdir(parents=True, exist_ok=True)
    weights = {o.name: _estimated_weight(o, source) for o in outputs}
    progress = _Progress(outputs, weights, on_progress)
    measurements: dict[LoudnessKey, Loudness | None] = {}
    results = []
    for output in outputs:
        results.append(await _run_one(output, source, workdir, measurements, progress, limits))
        await progress.report(output.name, 100.0)
    return results


def _estimated_weight(output: OutputSpec, source: Source) -> float:
    try:
        return plan_output(output, source, Path("/nonexistent"), None).weight
    except OutputError:
        return 0.01  # it will fail at once


async def _run_one(
    output: OutputSpec,
    source: Source,
    workdir: Path,
    measurements: dict[LoudnessKey, Loudness | None],
    progress: _Progress,
    limits: DecodeLimits | None,
) -> OutputResult:
    started = time.monotonic()
    partial = workdir / PARTIAL_DIR / output.name
    final = workdir / output.name
    for stale in (partial, final):  # left by an earlier attempt of the same job
        shutil.rmtree(stale, ignore_errors=True)
    partial.mkdir(parents=True)
    result = OutputResult(output.name, output.type, "failed")
    await progress.report(output.name, 0.0)
    try:
        measured, done = None, 0.0
        key = _loudness_key(output, source)
        if key is not None:
            if key not in measurements:
                measure = measure_step(key, source)
                log_text = await _run_step(
                    measure, output.name, workdir, result, progress, limits, base=0.0, share=10.0
                )
                measurements[key] = parse_loudness(log_text)
                done = 10.0
            measured = measurements[key]
            if measured is None:
                result.notes.append("loudness left as it is: the audio is silent or could not be measured")
        searched = None
        if isinstance(output, VideoOutput) and output.video.target_vmaf is not None:
            searched = await search_target_crf(output, source, workdir / SEARCH_DIR / output.name)
            output, result.crf_search = searched.output, searched.report
            result.notes.append(
                f"video.target_vmaf {searched.report['target_vmaf']:g}: CRF {searched.report['crf']} chosen"
            )
        plan = plan_output(output, source, partial, measured)
        result.notes += plan.notes
        share = (100.0 - done) / len(plan.steps)
        for step in plan.steps:
            await _run_step(step, output.name, workdir, result, progress, limits, base=done, share=share)
            done += share
        if plan.finish is not None:
            plan.finish(partial)
        if isinstance(output, VideoOutput) and (output.quality or searched is not None):
            metrics = list(dict.fromkeys([*(output.quality or []), *(["vmaf"] if searched else [])]))
            encoded = partial / f"{output.name}.{output.format}"
            result.quality = await measure_output(
                output, source, encoded, partial, workdir / SEARCH_DIR / output.name, metrics
            )
            if result.crf_search is not None:
                result.crf_search["vmaf"] = result.quality["vmaf"]["mean"]
        files = list_files(partial, prefix=output.name)
        if not files:
            raise OutputError("ffmpeg finished but wrote no file")
        partial.rename(final)
        result.status, result.files = "completed", files
    except (OutputError, FfmpegError) as exc:
        result.error = str(exc)
        result.input_fault = isinstance(exc, ProbeError)
        log.info("output.failed", output=output.name, error=result.error)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(workdir / SEARCH_DIR / output.name, ignore_errors=True)
        result.seconds = round(time.monotonic() - started, 3)
    return result


async def _run_step(
    step: Step,
    name: str,
    workdir: Path,
    result: OutputResult,
    progress: _Progress,
    limits: DecodeLimits | None,
    *,
    base: float,
    share: float,
) -> str:
    """One ffmpeg run, its stderr kept as `<workdir>/.logs/<output>.<step>.log`; returns that text."""
    log_path = workdir / LOG_DIR / f"{name}.{step.label}.log"
    result.logs.append(log_path)

    async def on_update(update: ProgressUpdate) -> None:
        if step.duration and update.out_time_s is not None:
            fraction = max(0.0, min(1.0, update.out_time_s / step.duration))
            await progress.report(name, base + share * fraction, update.speed)

    ran = await run_ffmpeg(
        step.argv,
        log_path=log_path,
        on_progress=on_update,
        stop_when=limits.breach if limits else None,
        max_memory_bytes=limits.memory_bytes if limits else None,
    )
    if limits is not None and (limit_error := limits.explain_failure(ran.returncode, ran.log)) is not None:
        raise limit_error
    check(ran)
    return ran.log
