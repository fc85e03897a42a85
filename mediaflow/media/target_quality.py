"""Target quality: find the CRF whose encode scores a requested VMAF, by probing samples of the source.

The design follows ab-av1's `crf-search` (read in github.com/alexheretic/ab-av1, src/command/
crf_search.rs and sample_encode.rs; this is our own code):

- Samples, not the whole source: a few short stretches spread evenly over the source, cut with stream
  copy (`-ss` before `-i`, `-frames:v`, into Matroska, as ab-av1 does), so cutting costs nothing and
  every probe encodes only `samples * sample_seconds` of video. When the samples would cover most of
  the source (85 %, ab-av1's threshold) the whole source is one sample instead.
- Each probe encodes the samples at one CRF with the output's own settings and scores them with VMAF
  against the samples themselves. Unlike ab-av1 the samples are joined into one file first (stream
  copy), so a probe is one encode and one VMAF run.
- Interpolated binary search over integer CRFs: once one probe scored above the target and one below,
  the next CRF is interpolated linearly between them (ab-av1's `vmaf_lerp_q`), clamped strictly
  inside the bracket, so the bracket always shrinks. Before a bracket exists we extrapolate from the
  two nearest probes (a secant), or from a typical slope of about one VMAF point per CRF step.

Cost: the search is paid for by the user as encode time, so the defaults (three samples of 2.5 % of
the source, at most four probes, VMAF on every third frame) keep it under ~40 % of one full encode.

Where it differs: ab-av1 searches the highest CRF at or above a *minimum* VMAF; we aim at the target
itself (`|score - target| <= tolerance` stops the search) and, when the budget of `max_probes` runs
out or the bracket closes, take the probe closest to the target, preferring one at or above it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mediaflow.media.concat import concat_copy
from mediaflow.media.ffmpeg import check, run_ffmpeg
from mediaflow.media.inputs import INPUT_SAFETY_OPTIONS, file_url
from mediaflow.media.quality import Frame, score_frames

# (lowest, highest, first guess) CRF per encoder; lower CRF = better quality for all of them.
CRF_RANGES: dict[str, tuple[int, int, int]] = {
    "libx264": (10, 51, 23),
    "libx265": (10, 51, 28),
    "libsvtav1": (5, 63, 35),
    "libvpx-vp9": (10, 63, 33),
}
_TYPICAL_SLOPE = 1.0  # VMAF points lost per CRF step around VMAF 90-95 (x264/x265 on 720p content)
_FULL_SOURCE_SHARE = 0.85  # samples covering this much of the source: probe the whole source instead


@dataclass(frozen=True)
class Probe:
    crf: int
    vmaf: float
    seconds: float  # wall time of this probe: encoding and scoring every sample


@dataclass
class CrfSearch:
    crf: int  # the CRF chosen
    vmaf: float  # its score on the samples: the prediction for the full encode
    target: float
    probes: list[Probe] = field(default_factory=list)
    samples: int = 0
    sample_seconds: float = 0.0  # length of each sample (the whole source when samples == 1 and it is short)
    seconds: float = 0.0  # wall time of the whole search, sample cutting included

    def as_dict(self) -> dict:
        return {
            "crf": self.crf,
            "predicted_vmaf": round(self.vmaf, 2),
            "target_vmaf": self.target,
            "samples": self.samples,
            "sample_seconds": round(self.sample_seconds, 3),
            "seconds": round(self.seconds, 2),
            "probes": [{"crf": p.crf, "vmaf": round(p.vmaf, 2), "seconds": round(p.seconds, 2)} for p in self.probes],
        }


def sample_starts(duration: float, samples: int, sample_seconds: float) -> list[float]:
    """Start times of `samples` stretches spread evenly over the source; [] means: use the whole source."""
    if samples < 1 or sample_seconds <= 0 or samples * sample_seconds >= duration * _FULL_SOURCE_SHARE:
        return []
    return [max(0.0, duration * (i + 1) / (samples + 1) - sample_seconds / 2) for i in range(samples)]


def auto_sample_seconds(duration: float) -> float:
    """2.5 % of the source per sample (1.5 s of a minute), between 1 and 20 s (ab-av1's length).

    Three samples then hold 7.5 % of the source, so four probes encode 30 % of it: what keeps a search
    under 40 % of one full encode, VMAF scoring (every third frame) included.
    """
    return min(20.0, max(1.0, duration * 0.025))


def next_crf(probes: list[Probe], target: float, lowest: int, highest: int) -> int | None:
    """The next CRF to probe, or None when no untried CRF can do better than what was probed."""
    tried = {p.crf for p in probes}
    above = [p for p in probes if p.vmaf >= target]  # good enough: raise the CRF
    below = [p for p in probes if p.vmaf < target]  # too lossy: lower the CRF
    good = max(above, key=lambda p: p.crf) if above else None
    bad = min(below, key=lambda p: p.crf) if below else None
    if good is not None and bad is not None:
        if bad.crf - good.crf <= 1:
            return None  # neighbours: the answer is one of them
        factor = (good.vmaf - target) / (good.vmaf - bad.vmaf) if good.vmaf != bad.vmaf else 0.5
        guess = round(good.crf + (bad.crf - good.crf) * factor)
        return min(max(guess, good.crf + 1), bad.crf - 1)
    nearest = good or bad
    assert nearest is not None
    side = sorted((p for p in probes if p is not nearest and (p in above) == (nearest in above)),
                  key=lambda p: abs(p.crf - nearest.crf))  # fmt: skip
    slope = _TYPICAL_SLOPE
    if side and side[0].crf != nearest.crf and side[0].vmaf != nearest.vmaf:
        slope = max(0.2, (side[0].vmaf - nearest.vmaf) / (nearest.crf - side[0].crf))  # secant, kept sane
    step = (nearest.vmaf - target) / slope
    step = math.copysign(min(max(abs(step), 1), 12), step)  # at least one CRF, at most 12
    guess = min(max(round(nearest.crf + step), lowest), highest)
    return None if guess in tried else guess


def choose(probes: list[Probe], target: float) -> Probe:
    """The probe closest to the target; between equally close ones, the better-quality one."""
    return min(probes, key=lambda p: (abs(p.vmaf - target), p.vmaf < target, p.crf))


async def search_crf(
    ffmpeg: str,
    source: Path,
    workdir: Path,
    *,
    target_vmaf: float,
    duration: float,
    video_options: Callable[[int], list[str]],
    frame: Frame,
    encoder: str = "libx264",
    samples: int = 3,
    sample_seconds: float | None = None,
    max_probes: int = 4,
    tolerance: float = 0.5,
    threads: int = 0,
    vmaf_subsample: int = 3,
) -> CrfSearch:
    """Search the CRF for `target_vmaf`.

    `video_options(crf)` returns the output's video options (codec, preset, CRF, filters such as
    scaling) exactly as the full encode will use them; `frame` is the size and rate they produce.
    """
    if not 0 < target_vmaf <= 100:
        raise ValueError(f"target_vmaf must be between 0 and 100; got {target_vmaf!r}")
    if max_probes < 1:
        raise ValueError(f"max_probes must be at least 1; got {max_probes!r}")
    lowest, highest, first = CRF_RANGES.get(encoder, (0, 51, 23))
    if sample_seconds is None:
        sample_seconds = auto_sample_seconds(duration)
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    joined = await _cut_samples(ffmpeg, source, workdir, duration, samples, sample_seconds, frame.fps)
    probed = joined or source
    result = CrfSearch(crf=first, vmaf=0.0, target=target_vmaf, samples=samples if joined else 1,
                       sample_seconds=sample_seconds if joined else duration)  # fmt: skip
    crf: int | None = first
    while crf is not None and len(result.probes) < max_probes:
        probe = await _probe(ffmpeg, probed, workdir, crf, video_options, frame, threads, vmaf_subsample)
        result.probes.append(probe)
        if abs(probe.vmaf - target_vmaf) <= tolerance:
            break
        crf = next_crf(result.probes, target_vmaf, lowest, highest)
    best = choose(result.probes, target_vmaf)
    result.crf, result.vmaf = best.crf, best.vmaf
    result.seconds = time.monotonic() - started
    return result


async def _cut_samples(
    ffmpeg: str, source: Path, workdir: Path, duration: float, samples: int, sample_seconds: float, fps: float
) -> Path | None:
    """One file holding every sample back to back (None: probe the whole source).

    One file, not one per sample, so a probe is one encode and one VMAF run instead of `samples` of
    each: on short samples the start-up of ffmpeg, x264's lookahead and libvmaf weigh as much as the work.
    """
    starts = sample_starts(duration, samples, sample_seconds)
    if not starts:
        return None
    frames = max(1, round(sample_seconds * fps))
    names = []
    for i, start in enumerate(starts):
        cut = workdir / f"sample{i}.mkv"
        argv = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *INPUT_SAFETY_OPTIONS,
                "-ss", f"{start:.3f}", "-i", file_url(source), "-map", "0:V:0", "-frames:v", str(frames),
                "-c:v", "copy", "-an", "-sn", "-dn", "-avoid_negative_ts", "make_zero",
                "-f", "matroska", file_url(cut)]  # fmt: skip
        check(await run_ffmpeg(argv, log_path=workdir / f"sample{i}.log"))
        names.append(cut.name)
    joined = workdir / "samples.mkv"
    await concat_copy(ffmpeg, names, workdir, joined, log_path=workdir / "samples.log")
    return joined


async def _probe(
    ffmpeg: str,
    probed: Path,
    workdir: Path,
    crf: int,
    video_options: Callable[[int], list[str]],
    frame: Frame,
    threads: int,
    vmaf_subsample: int,
) -> Probe:
    started = time.monotonic()
    encoded = workdir / f"crf{crf}.mkv"
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-nostats", "-loglevel", "info", *INPUT_SAFETY_OPTIONS,
            "-i", file_url(probed), "-map", "0:V:0", *video_options(crf), "-an", "-sn", "-dn",
            *(["-threads", str(threads)] if threads else []), "-f", "matroska", file_url(encoded)]  # fmt: skip
    check(await run_ffmpeg(argv, log_path=workdir / f"crf{crf}.log"))
    # the samples are cut, not scaled: score the encode against them at the output's size and rate
    scores = await score_frames(ffmpeg, encoded, probed, frame, workdir / f"vmaf{crf}", threads=threads,
                                subsample=vmaf_subsample)  # fmt: skip
    encoded.unlink(missing_ok=True)
    return Probe(crf=crf, vmaf=sum(f["vmaf"] for f in scores) / len(scores), seconds=time.monotonic() - started)
