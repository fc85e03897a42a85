"""Target quality: find the CRF whose encode scores a requested VMAF, by probing samples of the source.

The design follows ab-av1's `crf-search` (read in github.com/alexheretic/ab-av1, src/command/
crf_search.rs and sample_encode.rs; this is our own code):

- Samples, not the whole source (samples.py): a few short stretches spread evenly over the source,
  cut by stream copy, joined, and decoded once into raw frames, so each probe pays only for encoding
  the samples and scoring them.
- Each probe encodes the samples at one CRF with the output's own settings and scores them with VMAF
  against the samples themselves.
- Interpolated binary search over integer CRFs, as ab-av1's `vmaf_lerp_q`, but on `ln(100 - VMAF)`
  instead of VMAF: the distortion grows about exponentially with the CRF (the quantiser step doubles
  every 6 steps of x264/x265), so that line is nearly straight where VMAF's own bends (measured on
  x264 medium and ultrafast, 180p to 720p: the slope of ln(100 - VMAF) stays within 0.12-0.19 per CRF
  between VMAF 88 and 98, while VMAF's own slope doubles). A straight line means an extrapolation
  from one probe and an interpolation between two land near the target, so the search takes 2-3
  probes where a linear one took 4. Once one probe scored above the target and one below, the next
  CRF is interpolated between them, clamped strictly inside the bracket so the bracket always
  shrinks; before that it is extrapolated from the two nearest probes (a secant) or, after the first
  probe, from the encoder's typical slope.

Cost: the search is paid for by the user as encode time; with the defaults (samples holding 7.5 % of
the source, VMAF on every third frame) it costs about a fifth of one full encode (benchmarks/
sections/parallel_media.py reports it as a share of one full encode, in CPU seconds).

Where it differs: ab-av1 searches the highest CRF at or above a *minimum* VMAF; we aim at the target
itself (`|score - target| <= tolerance` stops the search) and, when the budget of `max_probes` runs
out or the bracket closes, take the probe closest to the target, preferring one at or above it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mediaflow.media.ffmpeg import check, run_ffmpeg
from mediaflow.media.inputs import INPUT_SAFETY_OPTIONS, file_url
from mediaflow.media.quality import Frame, score_frames
from mediaflow.media.samples import auto_samples, prepare_samples

# (lowest, highest, first guess for VMAF 93) CRF per encoder; lower CRF = better quality for all of them.
CRF_RANGES: dict[str, tuple[int, int, int]] = {
    "libx264": (10, 51, 23),
    "libx265": (10, 51, 28),
    "libsvtav1": (5, 63, 35),
    "libvpx-vp9": (10, 63, 33),
}
# how fast ln(100 - VMAF) grows per CRF step around VMAF 90-96: measured 0.12-0.19 for x264 (see the
# module's docstring); AV1 and VP9 spread the same range over 63 steps, so about half of it
_TYPICAL_LOG_SLOPE: dict[str, float] = {"libx264": 0.15, "libx265": 0.15, "libsvtav1": 0.08, "libvpx-vp9": 0.08}
_FIRST_GUESS_TARGET = 93.0  # the VMAF the first guesses of CRF_RANGES aim at
_MAX_STEP = 12  # CRF steps one extrapolation may take


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


def distortion(vmaf: float) -> float:
    """ln(100 - VMAF): about linear in the CRF. Scores at or past 100 count as 99.99."""
    return math.log(max(100.0 - vmaf, 0.01))


def first_crf(encoder: str, target: float) -> int:
    """The encoder's usual CRF for VMAF 93, moved along the typical slope for other targets."""
    lowest, highest, first = CRF_RANGES.get(encoder, (0, 51, 23))
    slope = _TYPICAL_LOG_SLOPE.get(encoder, 0.15)
    guess = first + round((distortion(target) - distortion(_FIRST_GUESS_TARGET)) / slope)
    return min(max(guess, lowest), highest)


def next_crf(probes: list[Probe], target: float, lowest: int, highest: int, typical_slope: float = 0.15) -> int | None:
    """The next CRF to probe, or None when no untried CRF can do better than what was probed."""
    tried = {p.crf for p in probes}
    above = [p for p in probes if p.vmaf >= target]  # good enough: raise the CRF
    below = [p for p in probes if p.vmaf < target]  # too lossy: lower the CRF
    good = max(above, key=lambda p: p.crf) if above else None
    bad = min(below, key=lambda p: p.crf) if below else None
    aim = distortion(target)
    if good is not None and bad is not None:
        if bad.crf - good.crf <= 1:
            return None  # neighbours: the answer is one of them
        low, high = distortion(good.vmaf), distortion(bad.vmaf)
        factor = (aim - low) / (high - low) if high != low else 0.5
        guess = round(good.crf + (bad.crf - good.crf) * factor)
        return min(max(guess, good.crf + 1), bad.crf - 1)
    nearest = good or bad
    assert nearest is not None
    side = sorted(
        (p for p in probes if p is not nearest and (p in above) == (nearest in above)),
        key=lambda p: abs(p.crf - nearest.crf),
    )
    slope = typical_slope
    if side and side[0].crf != nearest.crf and side[0].vmaf != nearest.vmaf:
        secant = (distortion(nearest.vmaf) - distortion(side[0].vmaf)) / (nearest.crf - side[0].crf)
        slope = min(max(secant, typical_slope / 3), typical_slope * 3)  # a noisy pair must not fling the guess
    step = (aim - distortion(nearest.vmaf)) / slope
    step = math.copysign(min(max(abs(step), 1), _MAX_STEP), step)  # at least one CRF, at most _MAX_STEP
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
    samples: int | None = None,
    sample_seconds: float | None = None,
    max_probes: int = 4,
    tolerance: float = 0.5,
    threads: int = 0,
    vmaf_subsample: int = 3,
    reference_filters: Sequence[str] = (),
) -> CrfSearch:
    """Search the CRF for `target_vmaf`.

    `video_options(crf)` returns the output's video options (codec, preset, CRF, filters such as
    scaling) exactly as the full encode will use them; `frame` is the size and rate they produce.
    `samples` and `sample_seconds` default to what `samples.auto_samples` picks for the duration.
    `reference_filters`: the picture rules the output applies (tone mapping, ...), applied to the
    samples before scoring, so a probe is scored against the picture it was meant to be.
    """
    if not 0 < target_vmaf <= 100:
        raise ValueError(f"target_vmaf must be between 0 and 100; got {target_vmaf!r}")
    if max_probes < 1:
        raise ValueError(f"max_probes must be at least 1; got {max_probes!r}")
    lowest, highest, _ = CRF_RANGES.get(encoder, (0, 51, 23))
    auto_count, auto_seconds = auto_samples(duration)
    samples = auto_count if samples is None else samples
    sample_seconds = auto_seconds if sample_seconds is None else sample_seconds
    started = time.monotonic()
    cut = await prepare_samples(
        ffmpeg, source, workdir, duration=duration, samples=samples, sample_seconds=sample_seconds, fps=frame.fps
    )
    first = first_crf(encoder, target_vmaf)
    crf: int | None = first
    result = CrfSearch(crf=first, vmaf=0.0, target=target_vmaf, samples=cut.count, sample_seconds=cut.seconds)
    try:
        while crf is not None and len(result.probes) < max_probes:
            probe = await _probe(
                ffmpeg, cut.path, workdir, crf, video_options, frame, threads, vmaf_subsample, reference_filters
            )
            result.probes.append(probe)
            if abs(probe.vmaf - target_vmaf) <= tolerance:
                break
            crf = next_crf(result.probes, target_vmaf, lowest, highest, _TYPICAL_LOG_SLOPE.get(encoder, 0.15))
    finally:
        if cut.path != source:
            cut.path.unlink(missing_ok=True)  # decoded samples are big: gone as soon as the search is
    best = choose(result.probes, target_vmaf)
    result.crf, result.vmaf = best.crf, best.vmaf
    result.seconds = time.monotonic() - started
    return result


async def _probe(
    ffmpeg: str,
    probed: Path,
    workdir: Path,
    crf: int,
    video_options: Callable[[int], list[str]],
    frame: Frame,
    threads: int,
    vmaf_subsample: int,
    reference_filters: Sequence[str],
) -> Probe:
    started = time.monotonic()
    encoded = workdir / f"crf{crf}.mkv"
    argv = [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-y",
        "-nostats",
        "-loglevel",
        "info",
        *INPUT_SAFETY_OPTIONS,
        "-i",
        file_url(probed),
        "-map",
        "0:V:0",
        *video_options(crf),
        "-an",
        "-sn",
        "-dn",
        *(["-threads", str(threads)] if threads else []),
        "-f",
        "matroska",
        file_url(encoded),
    ]
    check(await run_ffmpeg(argv, log_path=workdir / f"crf{crf}.log"))
    # the samples are cut, not scaled: score the encode against them at the output's size and rate
    scores = await score_frames(
        ffmpeg,
        encoded,
        probed,
        frame,
        workdir / f"vmaf{crf}",
        threads=threads,
        subsample=vmaf_subsample,
        reference_filters=reference_filters,
    )
    encoded.unlink(missing_ok=True)
    return Probe(crf=crf, vmaf=sum(f["vmaf"] for f in scores) / len(scores), seconds=time.monotonic() - started)
