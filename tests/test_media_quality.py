"""Quality reports (VMAF/PSNR/SSIM through the bundled ffmpeg's libvmaf) on real encodes of lavfi clips."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest

from mediaflow.media.quality import Frame, check_metrics, measure_quality, pool
from tests.media import detailed_clip, ffmpeg


def encode(source: Path, output: Path, *options: str, seek: tuple[float, float] | None = None) -> Path:
    cut = ["-ss", str(seek[0]), "-t", str(seek[1] - seek[0])] if seek else []
    argv = [
        ffmpeg(),
        "-v",
        "error",
        "-y",
        *cut,
        "-i",
        str(source),
        "-an",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        *options,
        str(output),
    ]
    subprocess.run(argv, check=True, timeout=120)
    return output


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return detailed_clip(tmp_path_factory.mktemp("quality"), "quality_source.mp4", seconds=3, audio=False)


async def test_degraded_encode_scores_lower_than_near_lossless(source: Path, tmp_path: Path) -> None:
    good = encode(source, tmp_path / "good.mp4", "-crf", "12")
    bad = encode(source, tmp_path / "bad.mp4", "-crf", "44")
    frame = Frame(480, 270, 30.0)
    good_report = await measure_quality(ffmpeg(), good, source, frame, tmp_path / "q-good")
    bad_report = await measure_quality(ffmpeg(), bad, source, frame, tmp_path / "q-bad")

    assert set(good_report) == {"vmaf", "psnr", "ssim"}
    assert set(good_report["vmaf"]) == {"mean", "min", "p5"}
    assert good_report["vmaf"]["mean"] > 95
    assert bad_report["vmaf"]["mean"] < 70
    for metric in ("vmaf", "psnr", "ssim"):
        assert bad_report[metric]["mean"] < good_report[metric]["mean"], metric
        assert bad_report[metric]["min"] <= bad_report[metric]["p5"] <= bad_report[metric]["mean"] + 1e-9


async def test_scaled_and_clipped_output_is_compared_frame_for_frame(source: Path, tmp_path: Path) -> None:
    # 1.0-2.0 s of the source, scaled to 240x136 at 15 fps: the report must cut, scale and resample the
    # source the same way. The source's noise changes every frame, so any misalignment scores badly.
    clipped = encode(source, tmp_path / "clip.mp4", "-crf", "10", "-vf", "scale=240:136,fps=15", seek=(1.0, 2.0))
    csv_path = tmp_path / "frames.csv"
    report = await measure_quality(
        ffmpeg(),
        clipped,
        source,
        Frame(240, 136, 15.0),
        tmp_path / "q",
        metrics=["vmaf", "ssim"],
        clip_start=1.0,
        clip_end=2.0,
        csv_path=csv_path,
    )
    assert set(report) == {"vmaf", "ssim"}
    assert report["vmaf"]["mean"] > 90
    misaligned = await measure_quality(
        ffmpeg(), clipped, source, Frame(240, 136, 15.0), tmp_path / "q-wrong", clip_start=1.2, clip_end=2.2
    )
    assert misaligned["vmaf"]["mean"] < report["vmaf"]["mean"] - 10

    rows = list(csv.reader(csv_path.open()))
    assert rows[0] == ["frame", "vmaf", "ssim"]
    assert len(rows) - 1 == 15  # one row per compared frame: 1 s at 15 fps
    assert [int(r[0]) for r in rows[1:]] == list(range(15))


async def test_a_work_directory_with_filter_syntax_in_its_name(source: Path, tmp_path: Path) -> None:
    # libvmaf's log path sits inside the filter graph, where ":", ",", "[" and "'" mean something.
    workdir = tmp_path / "we:ird,dir[1]'s"
    report = await measure_quality(ffmpeg(), source, source, Frame(480, 270, 30.0), workdir, metrics=["psnr"])
    assert report["psnr"]["mean"] >= 59  # libvmaf caps the PSNR of identical 8-bit frames at 60 dB
    assert (workdir / "quality.json").is_file()


def test_metric_names_are_checked() -> None:
    assert check_metrics(["ssim", "vmaf", "ssim"]) == ("ssim", "vmaf")
    with pytest.raises(ValueError, match="vmaf, psnr, ssim"):
        check_metrics(["vmaf", "butteraugli"])
    with pytest.raises(ValueError):
        check_metrics([])


def test_pooling_takes_the_fifth_percentile_by_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert pool(values) == {"mean": 50.5, "min": 1.0, "p5": 5.0}
    assert pool([80.0]) == {"mean": 80.0, "min": 80.0, "p5": 80.0}
