"""Measured quality of an encode: VMAF, PSNR and SSIM against its source, with the bundled ffmpeg.

One ffmpeg run through libvmaf computes all three: libvmaf 2.x has the model built in
(`model=version=vmaf_v0.6.1` is the filter's default and needs no model file; verified with the
bundled FFmpeg 9.0.2, whose filter help shows that default and scores without any file on disk), and
its `psnr` and `float_ssim` features ride along on the same decoded frames when they are asked for.

Making the comparison fair is most of the work: the source is cut to the output's clip range
(accurate input seek), brought to the output's frame rate and size (so an output scaled to 360p is
judged at 360p, as the user will watch it), both sides are converted to yuv420p and their timestamps
restarted at zero so frame N meets frame N (see `comparison_argv` for the time-base trap). `shortest=1` stops at the shorter side instead of
comparing a repeated last frame.

PSNR is the luma (Y) PSNR and SSIM the luma SSIM, the figures codec comparisons quote. Each metric is
pooled as mean, min and p5 (the 5th percentile: the worst stretch a viewer sees, less noisy than min).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mediaflow.media.errors import FfmpegError
from mediaflow.media.ffmpeg import ProgressUpdate, check, run_ffmpeg
from mediaflow.media.inputs import INPUT_SAFETY_OPTIONS, file_url

METRICS = ("vmaf", "psnr", "ssim")
# our metric name -> the per-frame key in libvmaf's JSON log
_FRAME_KEYS = {"vmaf": "vmaf", "psnr": "psnr_y", "ssim": "float_ssim"}
# the libvmaf features computed besides the model, only when asked for: float_ssim alone more than
# doubles the run (measured on 360p: VMAF 0.82 s CPU, with psnr and float_ssim 2.0 s)
_FEATURES = {"psnr": "name=psnr", "ssim": "name=float_ssim"}


class QualityError(FfmpegError):
    """The comparison could not be made; the message says why."""


@dataclass(frozen=True)
class Frame:
    """What the comparison needs to know about the encoded output."""

    width: int
    height: int
    fps: float  # frames per second of the output (its average rate when it kept the source's timing)


def check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"quality metrics must be some of {', '.join(METRICS)}; got {list(metrics)!r}")
    return tuple(dict.fromkeys(metrics))


def comparison_argv(
    ffmpeg: str,
    encoded: Path,
    source: Path,
    frame: Frame,
    json_log: Path,
    *,
    clip_start: float = 0.0,
    clip_end: float | None = None,
    metrics: Sequence[str] = METRICS,
    threads: int = 0,
    subsample: int = 1,
    reference_filters: Sequence[str] = (),
) -> list[str]:
    """The ffmpeg argv that writes libvmaf's per-frame JSON log for `encoded` against `source`.

    libvmaf always computes the VMAF model; PSNR and SSIM only when `metrics` names them.
    `reference_filters` first make the source the picture the output was meant to be (deinterlaced,
    tone-mapped: outputs/shaping.py), so the score measures the encode, not those choices.
    """
    source_cut: list[str] = []
    if clip_start > 0:
        source_cut += ["-ss", f"{clip_start:.6f}"]
    if clip_end is not None:
        source_cut += ["-t", f"{clip_end - clip_start:.6f}"]
    # Both sides go through the same fps filter: framesync pairs a frame with the other side's frame at
    # or before its timestamp, so two time bases (MP4's 1/15360 vs Matroska's milliseconds) put a
    # 33 ms frame "before" a 33.33 ms one and compare every frame with its predecessor (measured:
    # VMAF 78 instead of 99.9 on a noisy clip).
    rate = f"fps={frame.fps!r}"
    reference = [
        *reference_filters,
        rate,
        f"scale={frame.width}:{frame.height}:flags=bicubic",
        "format=yuv420p",
        "setpts=PTS-STARTPTS",
    ]
    features = "|".join(_FEATURES[m] for m in metrics if m in _FEATURES)
    vmaf_options = ":".join(
        [
            "log_fmt=json",
            f"log_path={_filter_value(str(json_log))}",
            *([f"feature={features}"] if features else []),
            f"n_threads={threads or os.cpu_count() or 1}",
            f"n_subsample={max(1, subsample)}",
            "shortest=1",
            "ts_sync_mode=nearest",
        ]
    )
    graph = (
        f"[0:v:0]{rate},format=yuv420p,setpts=PTS-STARTPTS[distorted];"
        f"[1:v:0]{','.join(reference)}[reference];"
        f"[distorted][reference]libvmaf={vmaf_options}"
    )
    return [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-y",
        "-nostats",
        "-progress",
        "pipe:1",
        "-loglevel",
        "info",
        *INPUT_SAFETY_OPTIONS,
        "-i",
        file_url(encoded),
        *INPUT_SAFETY_OPTIONS,
        *source_cut,
        "-i",
        file_url(source),
        "-filter_complex",
        graph,
        "-an",
        "-sn",
        "-f",
        "null",
        "-",
    ]


def _filter_value(text: str) -> str:
    """Escape a value for an option inside a -filter_complex graph (two levels, as ffmpeg's docs say)."""
    option_level = re.sub(r"([\\':])", r"\\\1", text)
    return re.sub(r"([\\'\[\],;])", r"\\\1", option_level)


async def measure_quality(
    ffmpeg: str,
    encoded: Path,
    source: Path,
    frame: Frame,
    workdir: Path,
    *,
    metrics: Sequence[str] = METRICS,
    clip_start: float = 0.0,
    clip_end: float | None = None,
    threads: int = 0,
    subsample: int = 1,
    csv_path: Path | None = None,
    on_progress: Callable[[ProgressUpdate], Awaitable[None]] | None = None,
    reference_filters: Sequence[str] = (),
) -> dict[str, dict[str, float]]:
    """{"vmaf": {"mean", "min", "p5"}, "psnr": {...}, "ssim": {...}} for the requested metrics.

    With `csv_path`, also writes one row per compared frame (frame, then one column per metric).
    """
    metrics = check_metrics(metrics)
    frames = await score_frames(
        ffmpeg,
        encoded,
        source,
        frame,
        workdir,
        clip_start=clip_start,
        clip_end=clip_end,
        metrics=metrics,
        threads=threads,
        subsample=subsample,
        on_progress=on_progress,
        reference_filters=reference_filters,
    )
    if csv_path is not None:
        write_csv(csv_path, frames, metrics)
    return {name: pool([f[_FRAME_KEYS[name]] for f in frames]) for name in metrics}


async def score_frames(
    ffmpeg: str,
    encoded: Path,
    source: Path,
    frame: Frame,
    workdir: Path,
    *,
    clip_start: float = 0.0,
    clip_end: float | None = None,
    metrics: Sequence[str] = ("vmaf",),
    threads: int = 0,
    subsample: int = 1,
    on_progress: Callable[[ProgressUpdate], Awaitable[None]] | None = None,
    reference_filters: Sequence[str] = (),
) -> list[dict[str, float]]:
    """libvmaf's per-frame scores (keys "frame", "vmaf", "psnr_y", "float_ssim", ...), in frame order."""
    workdir.mkdir(parents=True, exist_ok=True)
    json_log = workdir / "quality.json"
    json_log.unlink(missing_ok=True)
    argv = comparison_argv(
        ffmpeg,
        encoded,
        source,
        frame,
        json_log,
        clip_start=clip_start,
        clip_end=clip_end,
        metrics=metrics,
        threads=threads,
        subsample=subsample,
        reference_filters=reference_filters,
    )
    check(await run_ffmpeg(argv, log_path=workdir / "quality.log", on_progress=on_progress))
    return _frames(json_log)


def _frames(json_log: Path) -> list[dict[str, float]]:
    try:
        data: dict[str, Any] = json.loads(json_log.read_text())
    except (OSError, ValueError) as exc:
        raise QualityError(f"libvmaf wrote no readable log ({exc})") from exc
    frames = [{"frame": f["frameNum"], **f["metrics"]} for f in data.get("frames", [])]
    if not frames:
        raise QualityError("the quality comparison covered no frames: the output or the clip range is empty")
    return frames


def pool(values: Sequence[float]) -> dict[str, float]:
    """mean, min and the 5th percentile (nearest-rank), rounded to what the metrics can resolve."""
    finite = sorted(v for v in values if math.isfinite(v))  # PSNR of identical frames can be inf
    if not finite:
        return {"mean": math.inf, "min": math.inf, "p5": math.inf}
    p5 = finite[max(0, math.ceil(0.05 * len(finite)) - 1)]
    return {"mean": round(sum(finite) / len(finite), 4), "min": round(finite[0], 4), "p5": round(p5, 4)}


def write_csv(path: Path, frames: list[dict[str, float]], metrics: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["frame", *metrics])
        for f in frames:
            writer.writerow([int(f["frame"]), *(round(f[_FRAME_KEYS[m]], 4) for m in metrics)])
