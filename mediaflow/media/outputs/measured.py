"""Measured video outputs: the CRF searched for a target VMAF before encoding, the quality measured after.

Both run with the output's own settings, so what is measured is what the user gets: the search probes
exactly the output's video options (filters, codec, preset, caps) at each CRF, and the report compares
the finished file with the source cut to the output's clip and scaled to the output's size and rate
(`quality.measure_quality`).

The search probes samples of the whole source even when the output is a clip: `search_crf` spreads its
samples over one file, and a clip of the same source is the same kind of content. A clip far shorter
than the samples would be probed more cheaply by itself; that is left for when clips need it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from mediaflow.media.outputs.params import VideoSettings
from mediaflow.media.outputs.plan import OutputError, Source, clip_range
from mediaflow.media.outputs.spec import VideoOutput
from mediaflow.media.outputs.video import video_codec_args, video_filters, video_shaping
from mediaflow.media.probe import VideoStreamInfo
from mediaflow.media.quality import Frame, measure_quality
from mediaflow.media.target_quality import search_crf

DEFAULT_MAX_PROBES = 4
CSV_SUFFIX = ".quality.csv"
_ENCODERS = {"h264": "libx264", "h265": "libx265", "vp9": "libvpx-vp9", "av1": "libsvtav1"}


@dataclass
class Searched:
    output: VideoOutput  # the spec with the CRF found filled in
    report: dict  # crf, predicted_vmaf, target_vmaf, probes, ...; "vmaf" (full output) is added once measured


def output_frame(output: VideoOutput, source: Source) -> Frame:
    stream = source.need_video(f"video output {output.name!r}")
    _, (width, height) = video_filters(output.video, stream)
    return Frame(width, height, float(output.video.fps or stream.fps or 30))


def search_filters(video: VideoSettings, stream: VideoStreamInfo) -> tuple[str | None, list[str]]:
    """The CRF search's -vf for its probes and the picture rules for its reference samples.

    The samples are raw frames that no longer say which of them are interlaced (rawvideo in NUT drops
    the flag): an interlaced source's samples are deinterlaced whole, as when idet decided, or the
    probes would be made of, and scored against, the combed picture."""
    if stream.picture.interlaced:
        stream = replace(stream, picture=replace(stream.picture, field_order_measured=True))
    vf, _ = video_filters(video, stream)
    return vf, video_shaping(video, stream).filters


async def search_target_crf(output: VideoOutput, source: Source, workdir: Path) -> Searched:
    """Find the CRF for `output.video.target_vmaf`; probes and samples live in `workdir` (removed after)."""
    video = output.video
    assert video.target_vmaf is not None
    stream = source.need_video(f"video output {output.name!r}")
    if source.duration is None:
        raise OutputError("target_vmaf needs a source of known duration to take samples from; set video.crf instead")
    vf, reference_filters = search_filters(video, stream)

    def options(crf: int) -> list[str]:
        return [
            *(["-vf", vf] if vf else []),
            *video_codec_args(video.model_copy(update={"target_vmaf": None, "crf": crf})),
        ]

    found = await search_crf(
        source.ffmpeg,
        source.path,
        workdir,
        target_vmaf=video.target_vmaf,
        duration=source.duration,
        video_options=options,
        frame=output_frame(output, source),
        encoder=_ENCODERS[video.codec],
        max_probes=video.max_probes or DEFAULT_MAX_PROBES,
        threads=source.threads,
        reference_filters=reference_filters,
    )
    chosen = output.model_copy(update={"video": video.model_copy(update={"crf": found.crf})})
    return Searched(chosen, found.as_dict())


async def measure_output(
    output: VideoOutput, source: Source, encoded: Path, csv_dir: Path, workdir: Path, metrics: list[str]
) -> dict[str, dict[str, float | None]]:
    """Pooled scores of `encoded` against the source; per-frame scores in `<csv_dir>/<name>.quality.csv`."""
    start, duration = clip_range(output.clip, source)
    report = await measure_quality(
        source.ffmpeg,
        encoded,
        source.path,
        output_frame(output, source),
        workdir,
        metrics=metrics,
        clip_start=start,
        clip_end=None if duration is None else start + duration,
        threads=source.threads,
        csv_path=csv_dir / f"{output.name}{CSV_SUFFIX}",
        reference_filters=video_shaping(output.video, source.need_video(f"video output {output.name!r}")).filters,
    )
    # identical frames score PSNR inf, which JSON cannot carry: null says "no difference to measure"
    return {m: {k: (v if math.isfinite(v) else None) for k, v in pooled.items()} for m, pooled in report.items()}
