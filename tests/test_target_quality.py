"""Target-VMAF CRF search: the search rules on their own, then a real search on a detailed clip."""

from __future__ import annotations

import resource
import subprocess
import time
from pathlib import Path

import pytest

from mediaflow.media.quality import Frame, measure_quality
from mediaflow.media.target_quality import Probe, choose, next_crf, sample_starts, search_crf
from tests.media import detailed_clip, ffmpeg


def test_samples_spread_evenly_or_the_whole_source_when_they_would_cover_most_of_it() -> None:
    assert sample_starts(60, 3, 2) == [14.0, 29.0, 44.0]
    assert sample_starts(6, 3, 1) == [1.0, 2.5, 4.0]
    assert sample_starts(6, 3, 2) == []  # 6 s of samples >= 85 % of 6 s: probe the source itself
    assert sample_starts(10, 0, 2) == []


def test_a_bracket_is_interpolated_and_always_shrinks() -> None:
    probes = [Probe(23, 95.0, 1), Probe(33, 85.0, 1)]
    assert next_crf(probes, 93.0, 10, 51) == 25  # 2/10 of the way from 95 to 85
    # interpolation that would land on a bound is clamped strictly inside the bracket
    assert next_crf([Probe(23, 93.1, 1), Probe(25, 80.0, 1)], 93.0, 10, 51) == 24
    # neighbours: nothing left to try
    assert next_crf([Probe(26, 93.6, 1), Probe(27, 92.2, 1)], 93.0, 10, 51) is None


def test_one_sided_probes_extrapolate_within_the_encoder_range() -> None:
    assert next_crf([Probe(23, 96.0, 1)], 93.0, 10, 51) == 26  # about one VMAF point per CRF step
    # two probes on the same side: their own slope (2 points per step here)
    assert next_crf([Probe(23, 99.0, 1), Probe(25, 95.0, 1)], 93.0, 10, 51) == 26
    assert next_crf([Probe(23, 20.0, 1)], 93.0, 10, 51) == 11  # at most 12 steps at once
    assert next_crf([Probe(10, 70.0, 1)], 93.0, 10, 51) is None  # already at the best CRF


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
    found = await search_crf(ffmpeg(), source, tmp_path / "search", target_vmaf=93, duration=6, video_options=x264,
                             frame=frame, samples=3, sample_seconds=1, max_probes=5)  # fmt: skip
    search_cpu, search_wall = _children_cpu() - cpu, time.monotonic() - wall

    assert 1 <= len(found.probes) <= 5
    assert found.samples == 3
    assert found.crf in {p.crf for p in found.probes}
    cpu, wall = _children_cpu(), time.monotonic()
    output = tmp_path / "full.mp4"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-i", str(source), "-an", *x264(found.crf), str(output)],
                   check=True, timeout=120)  # fmt: skip
    encode_cpu, encode_wall = _children_cpu() - cpu, time.monotonic() - wall
    report = await measure_quality(ffmpeg(), output, source, frame, tmp_path / "full-q", metrics=["vmaf"])

    print(f"\ntarget 93: crf {found.crf}, samples predicted {found.vmaf:.2f}, full encode {report['vmaf']['mean']:.2f}; "
          f"probes {[(p.crf, round(p.vmaf, 2)) for p in found.probes]}; search {search_wall:.1f} s wall / "
          f"{search_cpu:.1f} s cpu, full encode {encode_wall:.1f} s wall / {encode_cpu:.1f} s cpu")  # fmt: skip
    assert abs(report["vmaf"]["mean"] - 93) <= 1.5
    assert found.as_dict()["probes"][0]["crf"] == 23  # x264's usual CRF is the first guess


async def test_bad_requests_are_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="target_vmaf"):
        await search_crf(ffmpeg(), tmp_path / "none.mp4", tmp_path, target_vmaf=120, duration=6,
                         video_options=lambda crf: [], frame=Frame(2, 2, 1.0))  # fmt: skip
    with pytest.raises(ValueError, match="max_probes"):
        await search_crf(ffmpeg(), tmp_path / "none.mp4", tmp_path, target_vmaf=93, duration=6, max_probes=0,
                         video_options=lambda crf: [], frame=Frame(2, 2, 1.0))  # fmt: skip
