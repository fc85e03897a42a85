"""Target-VMAF CRF search: the search rules on their own, then a real search on a detailed clip."""

from __future__ import annotations

import resource
import subprocess
import time
from pathlib import Path

import pytest

from mediaflow.media.quality import Frame, measure_quality
from mediaflow.media.samples import auto_samples, sample_starts
from mediaflow.media.target_quality import Probe, choose, first_crf, next_crf, search_crf
from tests.media import detailed_clip, ffmpeg


def test_samples_spread_evenly_or_the_whole_source_when_they_would_cover_most_of_it() -> None:
    assert sample_starts(60, 3, 2) == [14.0, 29.0, 44.0]
    assert sample_starts(6, 3, 1) == [1.0, 2.5, 4.0]
    assert sample_starts(6, 3, 2) == []  # 6 s of samples >= 85 % of 6 s: probe the source itself
    assert sample_starts(10, 0, 2) == []


def test_samples_hold_a_fixed_share_of_the_source_in_stretches_of_one_to_twenty_seconds() -> None:
    assert auto_samples(60) == (3, 1.5)  # 7.5 % of a minute
    assert auto_samples(20) == (2, 1.0)  # fewer stretches rather than ones shorter than a second
    assert auto_samples(6) == (1, 1.0)
    assert auto_samples(3600) == (3, 20.0)  # ab-av1's 20 s at most: 1.7 % of an hour


def test_a_bracket_is_interpolated_on_the_log_of_the_distortion_and_always_shrinks() -> None:
    probes = [Probe(23, 95.0, 1), Probe(33, 85.0, 1)]
    # ln(100 - VMAF): 1.61 at CRF 23, 2.71 at CRF 33, 1.95 wanted: 31 % of the way (linear VMAF said 20 %)
    assert next_crf(probes, 93.0, 10, 51) == 26
    # interpolation that would land on a bound is clamped strictly inside the bracket
    assert next_crf([Probe(23, 93.1, 1), Probe(25, 80.0, 1)], 93.0, 10, 51) == 24
    # neighbours: nothing left to try
    assert next_crf([Probe(26, 93.6, 1), Probe(27, 92.2, 1)], 93.0, 10, 51) is None


def test_one_sided_probes_extrapolate_within_the_encoder_range() -> None:
    # the typical slope: ln(100 - VMAF) from ln 4 to ln 7 is 0.56, at 0.15 per CRF step
    assert next_crf([Probe(23, 96.0, 1)], 93.0, 10, 51) == 27
    assert next_crf([Probe(23, 96.0, 1)], 93.0, 10, 51, typical_slope=0.3) == 25
    # two probes on the same side: their own slope (0.20 per step here, not the typical 0.15)
    assert next_crf([Probe(23, 98.0, 1), Probe(25, 97.0, 1)], 93.0, 10, 51) == 29
    assert next_crf([Probe(23, 20.0, 1)], 93.0, 10, 51) == 11  # at most 12 steps at once
    assert next_crf([Probe(10, 70.0, 1)], 93.0, 10, 51) is None  # already at the best CRF
    assert next_crf([Probe(50, 99.0, 1)], 93.0, 10, 51) == 51  # never past the encoder's range


def test_the_first_guess_follows_the_target() -> None:
    assert first_crf("libx264", 93) == 23 and first_crf("libx265", 93) == 28
    assert first_crf("libx264", 97) == 17  # 100 - VMAF shrinks from 7 to 3: ln(7/3) / 0.15 = 5.6 steps
    assert first_crf("libx264", 80) == 30
    assert first_crf("libx264", 99.9) == 10  # clamped to the encoder's range


def test_the_closest_probe_wins_and_ties_go_to_better_quality() -> None:
    assert choose([Probe(24, 94.4, 1), Probe(26, 92.2, 1), Probe(25, 93.3, 1)], 93.0).crf == 25
    assert choose([Probe(24, 93.5, 1), Probe(26, 92.5, 1)], 93.0).crf == 24


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def test_target_vmaf_93_lands_within_one_and_a_half(tmp_path: Path) -> None:
    source = detailed_clip(tmp_path, "target_source.mp4", seconds=6, audio=False)
    frame = Frame(480, 270, 30.0)

    def x264(crf: int) -> list[str]:
        return ["-c:v", "libx264", "-preset", "medium", "-crf", str(crf), "-pix_fmt", "yuv420p"]

    cpu, wall = _children_cpu(), time.monotonic()
    found = await search_crf(
        ffmpeg(),
        source,
        tmp_path / "search",
        target_vmaf=93,
        duration=6,
        video_options=x264,
        frame=frame,
        samples=3,
        sample_seconds=1,
        max_probes=5,
    )
    search_cpu, search_wall = _children_cpu() - cpu, time.monotonic() - wall

    assert 1 <= len(found.probes) <= 3  # ln(100 - VMAF) is straight enough to converge in three
    assert found.samples == 3
    assert found.crf in {p.crf for p in found.probes}
    left = {p.name for p in (tmp_path / "search").iterdir()}
    assert "decode.log" in left and not [n for n in left if n.endswith((".nut", ".mkv"))]  # decoded, then removed
    cpu, wall = _children_cpu(), time.monotonic()
    output = tmp_path / "full.mp4"
    subprocess.run(
        [ffmpeg(), "-v", "error", "-y", "-i", str(source), "-an", *x264(found.crf), str(output)],
        check=True,
        timeout=120,
    )
    encode_cpu, encode_wall = _children_cpu() - cpu, time.monotonic() - wall
    report = await measure_quality(ffmpeg(), output, source, frame, tmp_path / "full-q", metrics=["vmaf"])

    print(
        f"\ntarget 93: crf {found.crf}, samples predicted {found.vmaf:.2f}, full encode {report['vmaf']['mean']:.2f}; "
        f"probes {[(p.crf, round(p.vmaf, 2)) for p in found.probes]}; search {search_wall:.1f} s wall / "
        f"{search_cpu:.1f} s cpu, full encode {encode_wall:.1f} s wall / {encode_cpu:.1f} s cpu"
    )
    assert abs(report["vmaf"]["mean"] - 93) <= 1.5
    assert found.as_dict()["probes"][0]["crf"] == 23  # x264's usual CRF is the first guess


async def test_bad_requests_are_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="target_vmaf"):
        await search_crf(
            ffmpeg(),
            tmp_path / "none.mp4",
            tmp_path,
            target_vmaf=120,
            duration=6,
            video_options=lambda crf: [],
            frame=Frame(2, 2, 1.0),
        )
    with pytest.raises(ValueError, match="max_probes"):
        await search_crf(
            ffmpeg(),
            tmp_path / "none.mp4",
            tmp_path,
            target_vmaf=93,
            duration=6,
            max_probes=0,
            video_options=lambda crf: [],
            frame=Frame(2, 2, 1.0),
        )
