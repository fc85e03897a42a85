"""Samples of a source for test encodes (the target-VMAF search): cut once, decoded once, read by every probe.

Cutting follows ab-av1 (src/sample.rs, read in github.com/alexheretic/ab-av1; our own code): a few
short stretches spread evenly over the source, cut with stream copy (`-ss` before `-i`, `-frames:v`,
into Matroska), so cutting costs next to nothing. When the samples would cover most of the source
(85 %, ab-av1's threshold) the whole source is the sample instead. The stretches are joined into one
file (stream copy), so a probe is one encode and one VMAF run, not one per sample: on short samples
the start-up of ffmpeg, x264's lookahead and libvmaf weigh as much as the work.

Then, unlike ab-av1, the joined samples are decoded once into raw frames (rawvideo in NUT, which keeps
every pixel format and the timestamps). Each probe reads them twice, as the encoder's input and as
VMAF's reference, and decoding a detailed source is not cheap: on the benchmark's 720p source (40
Mbit/s) decoding the samples cost 1.8 s CPU per read, 3.6 s of a 9 s probe; reading raw frames costs
~0. Raw frames are big (1.4 MB per 720p frame), so this is only done within `RAW_BUDGET_BYTES`;
past it the probes read the stream-copied samples as before.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from mediaflow.media.concat import concat_copy
from mediaflow.media.ffmpeg import check, run_ffmpeg
from mediaflow.media.inputs import INPUT_SAFETY_OPTIONS, file_url
from mediaflow.media.probe_threads import PROBE_THREADS

_SAMPLED_SHARE = 0.075  # of the source's duration, spread over the samples
FULL_SOURCE_SHARE = 0.85  # samples covering this much of the source: probe the whole source instead
RAW_BUDGET_BYTES = 1 << 30  # disk the decoded samples may take (1 GiB: 3 x 1.5 s of 1080p30 is 0.8 GiB)
_FALLBACK_BYTES_PER_PIXEL = 3.0  # when the pixel format is unknown: as much as 4:4:4 8-bit or 4:2:0 16-bit


@dataclass(frozen=True)
class Samples:
    path: Path  # what every probe encodes and scores against
    count: int  # stretches joined in `path`; 1 with the whole source
    seconds: float  # length of each stretch (the source's duration with the whole source)
    decoded: bool  # `path` holds raw frames, decoded once


def sample_starts(duration: float, samples: int, sample_seconds: float) -> list[float]:
    """Start times of `samples` stretches spread evenly over the source; [] means: use the whole source."""
    if samples < 1 or sample_seconds <= 0 or samples * sample_seconds >= duration * FULL_SOURCE_SHARE:
        return []
    return [max(0.0, duration * (i + 1) / (samples + 1) - sample_seconds / 2) for i in range(samples)]


def auto_samples(duration: float) -> tuple[int, float]:
    """(count, seconds each): 7.5 % of the source in 1-3 stretches of 1-20 s (20 s is ab-av1's length).

    A minute gets 3 x 1.5 s, 20 s gets 2 x 1 s, under 13 s one second. The share bounds the search's
    cost: with the samples decoded once, a probe costs about that share of one full encode (measured:
    5 s CPU per probe beside 71 s for the full encode of the benchmark's minute of 720p). No sample is
    shorter than a second: shorter, it would be mostly the start of an encode (an I-frame, x264's
    lookahead still filling), which is not how the rest of the source encodes.
    """
    total = duration * _SAMPLED_SHARE
    seconds = min(20.0, max(1.0, total / 3))
    return max(1, min(3, round(total / seconds))), seconds


async def prepare_samples(
    ffmpeg: str,
    source: Path,
    workdir: Path,
    *,
    duration: float,
    samples: int,
    sample_seconds: float,
    fps: float,
    raw_budget: int = RAW_BUDGET_BYTES,
) -> Samples:
    """Cut and join the samples in `workdir`, then decode them once if the raw frames fit `raw_budget`."""
    workdir.mkdir(parents=True, exist_ok=True)
    starts = sample_starts(duration, samples, sample_seconds)
    if starts:
        cut = await _cut_and_join(ffmpeg, source, workdir, starts, max(1, round(sample_seconds * fps)))
        found = Samples(cut, len(starts), sample_seconds, decoded=False)
    else:
        found = Samples(source, 1, duration, decoded=False)
    raw_bytes = await _raw_size(found.path)
    # half the free space at most: the probes' encodes and the output itself still need room
    if raw_bytes is None or raw_bytes > min(raw_budget, shutil.disk_usage(workdir).free // 2):
        return found
    raw = workdir / "samples.nut"
    argv = [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        *INPUT_SAFETY_OPTIONS,
        "-i",
        file_url(found.path),
        "-map",
        "0:V:0",
        "-c:v",
        "rawvideo",
        "-an",
        "-sn",
        "-dn",
        "-f",
        "nut",
        file_url(raw),
    ]
    check(await run_ffmpeg(argv, log_path=workdir / "decode.log"))
    if found.path != source:
        found.path.unlink(missing_ok=True)  # the raw frames replace the cut: keep one copy on disk
    return Samples(raw, found.count, found.seconds, decoded=True)


async def _cut_and_join(ffmpeg: str, source: Path, workdir: Path, starts: list[float], frames: int) -> Path:
    names = []
    for i, start in enumerate(starts):
        cut = workdir / f"sample{i}.mkv"
        argv = [
            ffmpeg,
            "-hide_banner",
            "-nostdin",
            "-y",
            "-loglevel",
            "error",
            *INPUT_SAFETY_OPTIONS,
            "-ss",
            f"{start:.3f}",
            "-i",
            file_url(source),
            "-map",
            "0:V:0",
            "-frames:v",
            str(frames),
            "-c:v",
            "copy",
            "-an",
            "-sn",
            "-dn",
            "-avoid_negative_ts",
            "make_zero",
            "-f",
            "matroska",
            file_url(cut),
        ]
        check(await run_ffmpeg(argv, log_path=workdir / f"sample{i}.log"))
        names.append(cut.name)
    joined = workdir / "samples.mkv"
    await concat_copy(ffmpeg, names, workdir, joined, log_path=workdir / "samples.log")
    for name in names:
        (workdir / name).unlink(missing_ok=True)
    return joined


async def _raw_size(path: Path) -> int | None:
    """Bytes the first video stream of `path` takes decoded; None when it cannot be told."""
    try:
        return await PROBE_THREADS.run(_read_raw_size, path, timeout=30)
    except Exception:
        return None


def _read_raw_size(path: Path) -> int | None:
    import av  # imported here: only workers that search a CRF need it

    with av.open(str(path), mode="r") as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        width, height, pix_fmt = stream.codec_context.width, stream.codec_context.height, stream.codec_context.format
        frames = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
    if not width or not height or not frames or pix_fmt is None:
        return None
    try:
        frame_bytes = sum(plane.buffer_size for plane in av.VideoFrame(width, height, pix_fmt.name).planes)
    except Exception:
        frame_bytes = int(width * height * _FALLBACK_BYTES_PER_PIXEL)
    return frames * frame_bytes
