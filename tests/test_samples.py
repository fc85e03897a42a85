"""Samples for the target-VMAF search: cut by stream copy, joined, decoded once into raw frames."""

from __future__ import annotations

from pathlib import Path

from mediaflow.media.samples import prepare_samples
from mediaflow.media.timeline import read_timeline
from tests.media import detailed_clip, ffmpeg


async def test_samples_are_cut_joined_and_decoded_once_into_raw_frames(tmp_path: Path) -> None:
    source = detailed_clip(tmp_path, "source.mp4", width=320, height=180, seconds=6, audio=True)
    found = await prepare_samples(ffmpeg(), source, tmp_path / "s", duration=6, samples=3, sample_seconds=1, fps=30)
    assert found.decoded and found.path.suffix == ".nut" and (found.count, found.seconds) == (3, 1)
    timeline = await read_timeline(found.path)
    assert timeline.video.frames == 90 and timeline.audio is None  # 3 x 30 frames, video only
    pixels = 90 * 320 * 180 * 3 // 2  # yuv420p: the raw frames, plus a few bytes of NUT framing
    assert pixels <= found.path.stat().st_size < pixels + 16_384
    assert sorted(p.name for p in (tmp_path / "s").glob("*.mkv")) == []  # the cuts are not kept beside them


async def test_past_the_disk_budget_the_probes_read_the_stream_copied_samples(tmp_path: Path) -> None:
    source = detailed_clip(tmp_path, "source.mp4", width=320, height=180, seconds=6, audio=False)
    found = await prepare_samples(
        ffmpeg(),
        source,
        tmp_path / "s",
        duration=6,
        samples=3,
        sample_seconds=1,
        fps=30,
        raw_budget=90 * 320 * 180 * 3 // 2 - 1,
    )
    assert not found.decoded and found.path.name == "samples.mkv"
    assert (await read_timeline(found.path)).video.frames == 90


async def test_a_short_source_is_its_own_sample_decoded_once(tmp_path: Path) -> None:
    source = detailed_clip(tmp_path, "source.mp4", width=320, height=180, seconds=2, audio=False)
    found = await prepare_samples(ffmpeg(), source, tmp_path / "s", duration=2, samples=3, sample_seconds=1, fps=30)
    assert found.decoded and (found.count, found.seconds) == (1, 2)
    assert (await read_timeline(found.path)).video.frames == 60
    assert source.exists()  # the user's source is read, never removed
