"""Chunked encoding: chunk planning on keyframes, then real split/encode/join runs against a single encode."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mediaflow.media.chunking import (
    Chunk,
    ChunkingError,
    chunk_video_options,
    encode_chunk,
    encode_chunked,
    join,
    plan_chunks,
    split,
    verify_join,
)
from mediaflow.media.concat import concat_list
from mediaflow.media.quality import Frame, measure_quality
from mediaflow.media.timeline import StreamTimeline, read_timeline
from tests.media import _generate, detailed_clip, ffmpeg

VIDEO = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-pix_fmt", "yuv420p", "-vf", "scale=-2:180"]
AUDIO = ["-c:a", "aac", "-b:a", "96k"]


def timeline(seconds: float = 10, fps: int = 30, gop: int = 30) -> StreamTimeline:
    times = tuple(i / fps for i in range(int(seconds * fps)))
    return StreamTimeline(
        "video", "h264", len(times), 0.0, seconds, keyframes=times[::gop], frame_duration=1 / fps, times=times
    )


def test_chunks_start_on_keyframes_and_a_short_tail_joins_the_chunk_before() -> None:
    chunks = plan_chunks(timeline(10), chunk_seconds=3)
    assert [(c.first_frame, c.start, c.end) for c in chunks] == [(0, 0.0, 3.0), (90, 3.0, 6.0), (180, 6.0, None)]
    # 10 s in chunks of 4: 0, 4, 8 would leave a 2 s tail, which is not shorter than half a chunk: kept
    assert [c.start for c in plan_chunks(timeline(10), chunk_seconds=4)] == [0.0, 4.0, 8.0]
    # a GOP longer than the chunk size: chunks run from keyframe to keyframe
    assert [c.start for c in plan_chunks(timeline(10, gop=150), chunk_seconds=2)] == [0.0, 5.0]


def test_a_clip_range_trims_the_first_and_last_chunks() -> None:
    chunks = plan_chunks(timeline(10), chunk_seconds=2, clip_start=1.3, clip_end=6.5)
    assert [(c.start, c.end, c.trim_start, c.trim_end) for c in chunks] == [
        (1.0, 3.0, pytest.approx(0.3), None),
        (3.0, 5.0, 0.0, None),
        (5.0, None, 0.0, pytest.approx(1.5)),
    ]


def test_a_video_without_keyframes_cannot_be_chunked() -> None:
    broken = StreamTimeline(
        "video", "h264", 3, 0.0, 0.1, keyframes=(), frame_duration=1 / 30, times=(0.0, 0.033, 0.067)
    )
    with pytest.raises(ChunkingError, match="no keyframes"):
        plan_chunks(broken, chunk_seconds=2)


def test_chunk_options_restart_timestamps_and_make_x265_repeat_its_headers() -> None:
    assert chunk_video_options(["-c:v", "libx264", "-vf", "scale=-2:720"]) == [
        "-c:v",
        "libx264",
        "-vf",
        "setpts=PTS-STARTPTS,scale=-2:720",
    ]
    assert chunk_video_options(["-c:v", "libx265", "-x265-params", "aq-mode=3"]) == [
        "-vf",
        "setpts=PTS-STARTPTS",
        "-c:v",
        "libx265",
        "-x265-params",
        "aq-mode=3:repeat-headers=1",
    ]


def test_concat_lists_name_only_plain_files_next_to_them() -> None:
    assert concat_list(["chunk00000.mp4", "chunk00001.mp4"]) == (
        "ffconcat version 1.0\nfile chunk00000.mp4\nfile chunk00001.mp4\n"
    )
    for bad in ("../secret.mp4", "/etc/passwd", "http://example.com/a.mp4", "a b.mp4", "-x.mp4"):
        with pytest.raises(ValueError, match="plain file names"):
            concat_list([bad])


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 6 s, a closed GOP every second, B-frames, AAC audio
    return detailed_clip(tmp_path_factory.mktemp("chunking"), "chunk_source.mp4", width=320, height=180, seconds=6)


def single_encode(source: Path, output: Path, *cut: str) -> Path:
    subprocess.run(
        [ffmpeg(), "-v", "error", "-y", *cut, "-i", str(source), *VIDEO, *AUDIO, str(output)], check=True, timeout=120
    )
    return output


def decode_errors(path: Path) -> str:
    result = subprocess.run(
        [ffmpeg(), "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True, timeout=120
    )
    return result.stderr.strip() if result.returncode == 0 else f"exit {result.returncode}: {result.stderr}"


async def test_a_chunked_encode_matches_a_single_encode(source: Path, tmp_path: Path) -> None:
    chunked = tmp_path / "chunked.mp4"
    check = await encode_chunked(
        ffmpeg(),
        source,
        chunked,
        tmp_path / "work",
        video_options=VIDEO,
        audio_options=AUDIO,
        chunk_seconds=2,
        concurrency=2,
    )
    assert check.ok, check.problems
    assert check.figures["chunks"] == 3
    single = single_encode(source, tmp_path / "single.mp4")

    ours, theirs = await read_timeline(chunked), await read_timeline(single)
    assert ours.video.frames == theirs.video.frames == 180
    assert ours.video.times == pytest.approx(theirs.video.times, abs=1e-4)  # identical frame times
    assert abs(ours.video.duration - theirs.video.duration) < 1e-3
    assert abs(ours.audio.end - theirs.audio.end) <= 0.040
    assert decode_errors(chunked) == ""

    frame = Frame(320, 180, 30.0)
    chunked_vmaf = (await measure_quality(ffmpeg(), chunked, source, frame, tmp_path / "q1", metrics=["vmaf"]))["vmaf"]
    single_vmaf = (await measure_quality(ffmpeg(), single, source, frame, tmp_path / "q2", metrics=["vmaf"]))["vmaf"]
    print(f"\nchunked VMAF {chunked_vmaf['mean']:.2f} vs single {single_vmaf['mean']:.2f}")
    assert abs(chunked_vmaf["mean"] - single_vmaf["mean"]) <= 0.5


async def test_a_clip_range_is_cut_exactly_across_chunks(source: Path, tmp_path: Path) -> None:
    chunked = tmp_path / "clip.mp4"
    check = await encode_chunked(
        ffmpeg(),
        source,
        chunked,
        tmp_path / "work",
        video_options=VIDEO,
        audio_options=AUDIO,
        chunk_seconds=2,
        clip_start=1.3,
        clip_end=4.7,
    )
    assert check.ok, check.problems
    assert check.figures["frames"] == 102  # frames 39..140 of the source
    # the right frames, not just the right number: the noise differs in every frame
    report = await measure_quality(
        ffmpeg(), chunked, source, Frame(320, 180, 30.0), tmp_path / "q", metrics=["vmaf"], clip_start=1.3, clip_end=4.7
    )
    single = single_encode(source, tmp_path / "single.mp4", "-ss", "1.3", "-t", "3.4")
    reference = await measure_quality(
        ffmpeg(), single, source, Frame(320, 180, 30.0), tmp_path / "q2", metrics=["vmaf"], clip_start=1.3, clip_end=4.7
    )
    assert abs(report["vmaf"]["mean"] - reference["vmaf"]["mean"]) <= 0.5


async def test_the_join_check_catches_a_missing_chunk(source: Path, tmp_path: Path) -> None:
    whole = await read_timeline(source)
    chunks = plan_chunks(whole.video, chunk_seconds=2)
    pieces = await split(ffmpeg(), source, chunks, tmp_path / "split")
    encoded = []
    for chunk, piece in list(zip(chunks, pieces, strict=False))[:-1]:  # the last chunk is "lost"
        out = tmp_path / "enc" / chunk.name
        out.parent.mkdir(exist_ok=True)
        await encode_chunk(ffmpeg(), piece, chunk, out, VIDEO, log_path=tmp_path / f"{chunk.name}.log")
        encoded.append(out)
    joined = tmp_path / "joined.mp4"
    await join(ffmpeg(), encoded, joined, audio=None, muxer="mp4", log_path=tmp_path / "join.log")

    check = await verify_join(joined, whole, audio=True)
    assert not check.ok
    assert "120 frames instead of the source's 180" in check.problems
    assert any("lasts 4.000 s instead of 6.000 s" in p for p in check.problems)
    assert "the joined output has no audio" in check.problems


def test_chunk_names_sort_in_order() -> None:
    names = [Chunk(i, 0, 0.0, None).name for i in (0, 9, 10, 123)]
    assert names == sorted(names) == ["chunk00000.mp4", "chunk00009.mp4", "chunk00010.mp4", "chunk00123.mp4"]


async def test_a_source_whose_timestamps_do_not_start_at_zero(tmp_path: Path) -> None:
    # MPEG-TS starts at 1.4 s; clip ranges and chunk starts count from the first frame all the same
    source = tmp_path / "source.ts"
    subprocess.run(
        [
            ffmpeg(),
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25:duration=4",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-c:a",
            "aac",
            str(source),
        ],
        check=True,
        timeout=60,
    )
    whole = await read_timeline(source)
    assert whole.video.origin > 1
    check = await encode_chunked(
        ffmpeg(),
        source,
        tmp_path / "out.mp4",
        tmp_path / "work",
        video_options=VIDEO,
        audio_options=AUDIO,
        chunk_seconds=1,
        clip_start=0.5,
        clip_end=3.3,
    )
    assert check.ok, check.problems
    assert check.figures["frames"] == 70 and check.figures["chunks"] == 3  # the 0.3 s tail joins chunk 2


def test_chunks_never_start_on_a_keyframe_of_an_open_gop() -> None:
    video = timeline(10)
    # every keyframe but 0 and 6 s opens an open GOP (leading pictures reference the GOP before)
    video = StreamTimeline(
        **{**vars(video), "open_keyframes": frozenset(t for t in video.keyframes if t not in (0, 6))}
    )
    assert [c.start for c in plan_chunks(video, chunk_seconds=2)] == [0.0, 6.0]


def open_gop_hevc(directory: Path) -> Path:
    """4 s of HEVC at 25 fps as x265 writes it by default: open GOPs (a CRA keyframe every 12 frames,
    with B-frames shown before it but decoded after it), plus one IDR at 2 s, where two encodes meet."""
    halves = []
    for half in ("a", "b"):
        halves.append(
            _generate(
                directory / f"open_gop_{half}.mp4",
                [
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=160x90:rate=25:duration=2",
                    "-c:v",
                    "libx265",
                    "-preset",
                    "ultrafast",
                    "-x265-params",
                    "log-level=error:keyint=12:min-keyint=12:open-gop=1:bframes=3",
                    "-tag:v",
                    "hvc1",
                ],
            )
        )
    listing = directory / "open_gop.txt"
    listing.write_text("".join(f"file '{half.name}'\n" for half in halves))
    return _generate(directory / "open_gop.mp4", ["-f", "concat", "-i", str(listing), "-c", "copy"])


async def test_an_open_gop_hevc_source_is_cut_only_where_a_gop_is_closed(tmp_path: Path) -> None:
    source = open_gop_hevc(tmp_path)
    video = (await read_timeline(source)).video
    assert video is not None and video.frames == 100
    assert len(video.open_keyframes) >= 4 and 2.0 not in video.open_keyframes  # the CRAs, not the IDR
    check = await encode_chunked(
        ffmpeg(),
        source,
        tmp_path / "chunked.mp4",
        tmp_path / "work",
        video_options=VIDEO,
        audio_options=None,
        chunk_seconds=0.5,
    )
    # cut at 0 and 2 s only: every frame decoded, where a cut at a CRA lost its leading frames
    assert check.ok, check.problems
    assert check.figures["chunks"] == 2
    assert (await read_timeline(tmp_path / "chunked.mp4")).video.frames == 100
