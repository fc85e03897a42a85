"""ffmpeg_ops and probe: presets pinned as golden argv lists, format rules, progress parsing, and real
ffmpeg runs on clips generated once per session (tests/media.py)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import stat
import struct
import uuid
from pathlib import Path

import av
import pytest

import ffmpeg_ops
from ffmpeg_ops import (
    FfmpegError,
    FfmpegFailedError,
    FfmpegResult,
    InvalidFormatError,
    OutputFormat,
    ProbeError,
    ProgressParser,
    ProgressUpdate,
    Source,
    allowed_formats,
    check,
    default_format,
    ffmpeg_binary,
    ffprobe_binary,
    method_argv,
    mime_type_for,
    resolve_output_format,
    run_ffmpeg,
    summarize_stderr,
)
from mediaflow.jobs.model import Method
from mediaflow.media import probe as probe_module
from mediaflow.media.picture import Picture
from mediaflow.media.probe import MediaInfo, check_safe_input, media_info_from_ffprobe, probe
from mediaflow.media.tracks import AudioTrack, SourceTracks, SubtitleTrack
from mediaflow.settings import Settings
from tests import media
from tests.golden_argv import CLAIMED, FF, GOLDEN, HEAD, WHITELIST, seed_argv
from tests.servers.process import server_unavailable

NO_FFPROBE = Settings(_env_file=None, FFPROBE_BINARY=None)
REFUSED = "not an accepted media file"  # what the input whitelist makes of playlists and reference files


@pytest.fixture(params=["pyav", "ffprobe"])
def prober(request: pytest.FixtureRequest) -> Settings:
    """Settings that probe with PyAV, or with a real ffprobe: both paths must accept and refuse alike."""
    if request.param == "pyav":
        return NO_FFPROBE
    binary = media.ffprobe()
    if binary is None:
        server_unavailable("ffprobe", "not on PATH and not in .deps/ffprobe (run scripts/setup.sh --test)")
    return Settings(_env_file=None, FFPROBE_BINARY=binary)


VIDEO_METHODS = [Method.COMPRESS, Method.RESIZE, Method.CONVERT_FORMAT, Method.BLACK_AND_WHITE]


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    secret_dir = d / "elsewhere"
    secret_dir.mkdir()
    return {
        "av": media.make_clip(d, "av.mp4", width=320, height=240, seconds=2),
        "video_only": media.make_clip(d, "video_only.mp4", width=320, height=240, seconds=1, audio=False),
        "audio_only": media.audio_only(d),
        "zero": media.zero_byte(d),
        "text": media.text_as_mp4(d),
        "truncated": media.truncated_mp4(d),
        "secret": media.make_clip(secret_dir, "secret.ts", width=160, height=120, seconds=1, audio=False),
    }


@pytest.fixture(scope="session")
def ff() -> str:
    return media.ffmpeg()


def out_dir(tmp_path: Path) -> Path:
    return tmp_path / f"out-{uuid.uuid4().hex[:8]}"


# --- golden argv (the table is in tests/golden_argv.py) --------------------------------------------


@pytest.mark.parametrize(("method", "fmt"), list(GOLDEN), ids=[f"{m.value}-{f}" for m, f in GOLDEN])
def test_golden_argv(method: Method, fmt: str) -> None:
    argv = method_argv(method, fmt, Source(Path("/in/src.mov"), CLAIMED, FF), Path("/out"))
    assert argv == [*HEAD, *GOLDEN[method, fmt], f"file:/out/{method.value}.{fmt}"]


def test_golden_covers_every_method_in_every_format() -> None:
    assert set(GOLDEN) == {(method, fmt) for method in Method for fmt in allowed_formats(method)}
    assert ffmpeg_ops.INPUT_SAFETY_OPTIONS == ("-protocol_whitelist", "file", "-format_whitelist", WHITELIST)


def test_threads_come_just_before_the_muxer() -> None:
    argv = method_argv(Method.COMPRESS, "mkv", Source(Path("/in/src.mov"), CLAIMED, FF, threads=2), Path("/out"))
    assert argv[-5:] == ["-threads", "2", "-f", "matroska", "file:/out/compress.mkv"]
    unthreaded = method_argv(Method.COMPRESS, "mkv", Source(Path("/in/src.mov"), CLAIMED, FF, threads=0), Path("/out"))
    assert "-threads" not in unthreaded


def test_paths_are_absolute_file_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = method_argv(Method.EXTRACT_AUDIO, "mp3", Source(Path("-i.mp4"), CLAIMED, FF), Path("http:evil"))
    assert argv[argv.index("-i") + 1] == f"file:{tmp_path}/-i.mp4"
    assert argv[-1] == f"file:{tmp_path}/http:evil/extract_audio.mp3"
    assert "-i.mp4" not in argv and not any(arg.startswith("http:") for arg in argv)


def test_method_argv_refuses_a_format_the_method_cannot_produce() -> None:
    with pytest.raises(InvalidFormatError, match="choose one of: mp3"):
        method_argv(Method.EXTRACT_AUDIO, "mp4", Source(Path("/a.mp4"), CLAIMED, FF), Path("/out"))


# --- formats ---------------------------------------------------------------------------------------------


def test_allowed_and_default_formats() -> None:
    for method in VIDEO_METHODS:
        assert allowed_formats(method) == ("mp4", "mov", "mkv", "webm")
        assert default_format(method) == "mp4"
    assert allowed_formats(Method.EXTRACT_AUDIO) == ("mp3",)
    assert default_format(Method.EXTRACT_AUDIO) == "mp3"
    assert allowed_formats("extract_audio") == ("mp3",)  # type: ignore[arg-type]  # plain strings work too


@pytest.mark.parametrize(
    ("requested", "expected"),
    [(None, "mp4"), ("", "mp4"), ("  ", "mp4"), ("mp4", "mp4"), ("MKV", "mkv"), (".mov", "mov"), (" .WebM ", "webm")],
)
def test_resolve_output_format_normalizes(requested: str | None, expected: str) -> None:
    assert resolve_output_format(Method.COMPRESS, requested).name == expected


def test_output_format_table() -> None:
    table = {
        m: resolve_output_format(Method.RESIZE if m != "mp3" else Method.EXTRACT_AUDIO, m)
        for m in ("mp4", "mov", "mkv", "webm", "mp3")
    }
    assert table == {
        "mp4": OutputFormat("mp4", "mp4", "video/mp4"),
        "mov": OutputFormat("mov", "mov", "video/quicktime"),
        "mkv": OutputFormat("mkv", "mkv", "video/x-matroska"),
        "webm": OutputFormat("webm", "webm", "video/webm"),
        "mp3": OutputFormat("mp3", "mp3", "audio/mpeg"),
    }
    assert mime_type_for("clip_compress.MKV") == "video/x-matroska"
    assert mime_type_for("a.b.mp3") == "audio/mpeg"
    assert mime_type_for("ffmpeg.log") is None and mime_type_for("mp4") is None


@pytest.mark.parametrize(
    ("method", "requested", "message"),
    [
        (
            Method.COMPRESS,
            "avi",
            "output_format 'avi' is not available for compress; choose one of: mp4, mov, mkv, webm",
        ),
        (Method.EXTRACT_AUDIO, "mp4", "output_format 'mp4' is not available for extract_audio; choose one of: mp3"),
        (Method.RESIZE, "mp3", "output_format 'mp3' is not available for resize; choose one of: mp4, mov, mkv, webm"),
        (Method.CONVERT_FORMAT, ".", "output_format '.' is not available for convert_format; choose one of: mp4, mov"),
        (Method.BLACK_AND_WHITE, "mp4 ", None),
    ],
)
def test_resolve_output_format_rejects_with_the_accepted_list(
    method: Method, requested: str, message: str | None
) -> None:
    if message is None:
        assert resolve_output_format(method, requested).name == "mp4"
        return
    with pytest.raises(InvalidFormatError) as info:
        resolve_output_format(method, requested)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, ValueError)


# --- binaries --------------------------------------------------------------------------------------------


def test_binary_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import imageio_ffmpeg

    assert ffmpeg_binary(Settings(_env_file=None, FFMPEG_BINARY="/x/ffmpeg")) == "/x/ffmpeg"
    assert ffprobe_binary(Settings(_env_file=None, FFPROBE_BINARY="/x/ffprobe")) == "/x/ffprobe"
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH: the bundled build, and PyAV for probing
    assert ffmpeg_binary(NO_FFPROBE) == imageio_ffmpeg.get_ffmpeg_exe()
    assert ffprobe_binary(NO_FFPROBE) is None
    for name in ("ffmpeg", "ffprobe"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    assert ffmpeg_binary(NO_FFPROBE) == str(tmp_path / "ffmpeg")
    assert ffprobe_binary(NO_FFPROBE) == str(tmp_path / "ffprobe")


# --- progress ----------------------------------------------------------------------------------------------

RECORDED = """\
frame=0
fps=0.00
stream_0_0_q=0.0
bitrate=N/A
total_size=48
out_time_us=N/A
out_time_ms=N/A
out_time=N/A
dup_frames=0
drop_frames=0
speed=N/A
progress=continue
frame=7
fps=0.00
stream_0_0_q=34.0
bitrate=   0.2kbits/s
total_size=48
out_time_us=2368000
out_time_ms=2368000
out_time=00:00:02.368000
dup_frames=0
drop_frames=0
speed=4.71x
progress=continue
frame=300
out_time_ms=10000000
out_time=00:00:10.000000
speed= 239x
progress=end
"""


def test_progress_parser_on_a_recorded_run() -> None:
    parser = ProgressParser()
    updates = [u for u in map(parser.feed, RECORDED.splitlines()) if u is not None]
    assert updates == [
        ProgressUpdate(out_time_s=None, speed=None, ended=False),
        ProgressUpdate(out_time_s=2.368, speed=4.71, ended=False),
        ProgressUpdate(out_time_s=10.0, speed=239.0, ended=True),  # out_time_ms is microseconds too
    ]


def test_progress_parser_details() -> None:
    parser = ProgressParser()
    assert parser.feed(b"out_time=-00:00:00.023220\n") is None  # bytes with a newline are fine
    assert parser.feed("garbage without equals") is None
    assert parser.feed("progress=continue") == ProgressUpdate(out_time_s=-0.02322, speed=None, ended=False)
    assert parser.feed("progress=end") == ProgressUpdate(None, None, True)  # a block forgets the previous one


# --- stderr summaries and errors -----------------------------------------------------------------------------


def test_summarize_stderr_drops_noise() -> None:
    stderr = """ffmpeg version n9.0.2 Copyright (c) 2000-2025 the FFmpeg developers
  built with gcc 14 (GCC)
  configuration: --enable-gpl --enable-libx264
  libavutil      60. 26.102 / 60. 26.102
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:/tmp/job/in.mp4':
  Duration: 00:00:10.00, start: 0.000000, bitrate: 817 kb/s
  Stream #0:0[0x1](und): Video: h264 (High), yuv420p, 320x240, 30 fps
Stream mapping:
  Stream #0:0 -> #0:0 (h264 (native) -> h264 (libx264))
[libx264 @ 0x55d1a90651c0] using cpu capabilities: MMX2 SSE2Fast
frame=   60 fps=0.0 q=-1.0 Lsize=     170KiB time=00:00:01.93 bitrate= 720.9kbits/s speed=9.08x
[h264 @ 0x55d1a9062000] Invalid NAL unit size (1234 > 56).
[h264 @ 0x55d1a9062000] Invalid NAL unit size (1234 > 56).
    Last message repeated 3 times
[out#0/mp4 @ 0x55d1a9061000] video:170KiB audio:33KiB subtitle:0KiB other streams:0KiB
"""
    assert summarize_stderr(stderr) == "Invalid NAL unit size (1234 > 56)"
    assert summarize_stderr("just one plain line\n") == "just one plain line"
    assert summarize_stderr("") == ""


def test_failed_error_message() -> None:
    with pytest.raises(FfmpegFailedError) as info:
        check(FfmpegResult(183, "[in#0 @ 0x1] moov atom not found\nError opening input: Invalid data\n"))
    assert (
        info.value.returncode == 183 and info.value.summary == "moov atom not found\nError opening input: Invalid data"
    )
    assert str(info.value) == "ffmpeg failed with exit code 183: moov atom not found; Error opening input: Invalid data"
    assert isinstance(info.value, FfmpegError)
    assert str(FfmpegFailedError(-9, "")) == "ffmpeg was killed by signal 9"
    check(FfmpegResult(0, "anything"))  # success does not raise


# --- probing ------------------------------------------------------------------------------------------------


async def test_probe_a_good_clip(clips: dict[str, Path], prober: Settings) -> None:
    info = await probe(clips["av"], prober)
    assert "mp4" in info.format_name.split(",")
    assert info.duration == pytest.approx(2.0, abs=0.05)
    assert info.video is not None and info.audio is not None
    assert (info.video.codec, info.video.width, info.video.height) == ("h264", 320, 240)
    assert info.video.fps == pytest.approx(30.0)
    assert (info.audio.codec, info.audio.sample_rate, info.audio.channels) == ("aac", 48000, 1)
    assert info.stream_count == 2 and info.bit_rate and info.bit_rate > 0
    check_safe_input(info)


async def test_probe_single_kind_sources(clips: dict[str, Path], prober: Settings) -> None:
    video_only = await probe(clips["video_only"], prober)
    assert video_only.audio is None and video_only.video is not None and video_only.stream_count == 1
    audio = await probe(clips["audio_only"], prober)
    assert (
        audio.video is None
        and audio.audio is not None
        and audio.audio.codec == "aac"
        and audio.duration == pytest.approx(2.0, abs=0.1)
    )


@pytest.mark.parametrize("kind", ["zero", "text", "truncated"])
async def test_probe_unreadable_files(clips: dict[str, Path], kind: str, prober: Settings) -> None:
    with pytest.raises(ProbeError, match=r"^the source is not a readable media file \(Invalid data found"):
        await probe(clips[kind], prober)


async def test_probe_missing_directory_and_fifo(tmp_path: Path, prober: Settings) -> None:
    with pytest.raises(ProbeError, match="does not exist"):
        await probe(tmp_path / "nope.mp4", prober)
    with pytest.raises(ProbeError, match="not a regular file"):
        await probe(tmp_path, prober)
    os.mkfifo(tmp_path / "fifo.mp4")  # would block a prober forever
    with pytest.raises(ProbeError, match="not a regular file"):
        await asyncio.wait_for(probe(tmp_path / "fifo.mp4", prober), 5)


async def test_misconfigured_ffprobe_is_not_the_sources_fault(clips: dict[str, Path], tmp_path: Path) -> None:
    settings = Settings(_env_file=None, FFPROBE_BINARY=str(tmp_path / "no-such-ffprobe"))
    with pytest.raises(FfmpegError, match="cannot start ffprobe") as info:
        await probe(clips["av"], settings)
    assert not isinstance(info.value, ProbeError)


async def test_probe_with_ffprobe_matches_pyav(clips: dict[str, Path]) -> None:
    binary = media.ffprobe()
    if binary is None:
        server_unavailable("ffprobe", "not on PATH and not in .deps/ffprobe (run scripts/setup.sh --test)")
    settings = Settings(_env_file=None, FFPROBE_BINARY=binary)
    assert await probe(clips["av"], settings) == await probe(clips["av"], NO_FFPROBE)
    with pytest.raises(ProbeError, match="not a readable media file"):
        await probe(clips["zero"], settings)


def test_media_info_from_ffprobe_json() -> None:
    document = {
        "streams": [
            {
                "index": 0,
                "codec_name": "mjpeg",
                "codec_type": "video",
                "width": 600,
                "height": 600,
                "avg_frame_rate": "0/0",
                "disposition": {"default": 0, "attached_pic": 1},
            },
            {
                "index": 1,
                "codec_name": "h264",
                "codec_type": "video",
                "width": 1920,
                "height": 1080,
                "r_frame_rate": "30000/1001",
                "avg_frame_rate": "30000/1001",
                "disposition": {"attached_pic": 0},
            },
            {
                "index": 2,
                "codec_name": "aac",
                "codec_type": "audio",
                "sample_rate": "44100",
                "channels": 2,
                "bit_rate": "128000",
            },
            {"index": 3, "codec_name": "mov_text", "codec_type": "subtitle"},
        ],
        "format": {
            "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
            "nb_streams": 4,
            "duration": "12.345000",
            "bit_rate": "N/A",
        },
    }
    info = media_info_from_ffprobe(document)
    assert info == MediaInfo(
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        duration=12.345,
        video=probe_module.VideoStreamInfo(
            "h264", 1920, 1080, pytest.approx(29.97, abs=0.001), index=1, picture=Picture(frame_rate_mode="constant")
        ),
        audio=probe_module.AudioStreamInfo("aac", 44100, 2, 128000),
        stream_count=4,
        bit_rate=None,
        tracks=SourceTracks(
            audio=(AudioTrack(0, "aac", 2, None, 44100, "und", default=False, forced=False, title=None),),
            subtitles=(SubtitleTrack(0, "mov_text", "und", default=False, forced=False, title=None),),
            ignored=("cover art",),
        ),
    )
    assert media_info_from_ffprobe({"format": {"format_name": "mp3"}, "streams": []}).video is None


@pytest.mark.parametrize("format_name", ["hls", "applehttp", "concat", "dash", "imf", "tty", "image2", "sdp"])
def test_check_safe_input_refuses(format_name: str) -> None:
    with pytest.raises(ProbeError):
        check_safe_input(MediaInfo(format_name, 2.0, None, None, 1, None))


@pytest.mark.parametrize("format_name", ["mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "mpegts", "mp3", "avi"])
def test_check_safe_input_accepts(format_name: str) -> None:
    check_safe_input(MediaInfo(format_name, 2.0, None, None, 1, None))


# --- hostile inputs: playlists and reference files ---------------------------------------------------------------


async def _run(ff: str, method: Method, source: Path, tmp_path: Path, fmt: str = "mp4", *, safe: bool = True):
    argv, output = seed_argv(ff, method, source, out_dir(tmp_path), fmt)
    if not safe:  # the control experiment: what the safety options prevent
        i = argv.index("-protocol_whitelist")
        del argv[i : i + len(ffmpeg_ops.INPUT_SAFETY_OPTIONS)]
    result = await run_ffmpeg(argv, log_path=output.with_suffix(".log"))
    return result, output


async def test_hls_playlist_cannot_reach_the_network(
    ff: str, clips: dict[str, Path], tmp_path: Path, prober: Settings
) -> None:
    connections = 0

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        playlist = media.hls_playlist_pointing_at(tmp_path, f"http://127.0.0.1:{port}/x.ts")
        with pytest.raises(ProbeError, match=REFUSED):
            await probe(playlist, prober)
        result, output = await _run(ff, Method.COMPRESS, playlist, tmp_path)
        assert result.returncode != 0 and not output.exists()
        assert "Format not on whitelist" in summarize_stderr(result.log)
        await asyncio.sleep(0.1)
        assert connections == 0
        # Without our options ffmpeg 9 refuses too: a playlist opened through `file` may only use
        # file, crypto and data segments. Local files are the real hole; see the next test.
        result, _ = await asyncio.wait_for(_run(ff, Method.COMPRESS, playlist, tmp_path, safe=False), 30)
        assert result.returncode != 0 and "Protocol 'http' not on whitelist" in result.log and connections == 0


@pytest.mark.parametrize("form", ["file:{abs}", "{abs}", "../elsewhere/secret.ts", "concat:{abs}|{abs}"])
async def test_hls_playlist_cannot_read_local_files(
    ff: str, clips: dict[str, Path], form: str, prober: Settings
) -> None:
    job_dir = clips["secret"].parent.parent / f"job-{uuid.uuid4().hex[:6]}"
    job_dir.mkdir()
    playlist = media.hls_playlist_pointing_at(job_dir, form.format(abs=clips["secret"]))
    with pytest.raises(ProbeError, match=REFUSED):  # refused by the whitelist, not by luck
        await probe(playlist, prober)
    result, output = await _run(ff, Method.COMPRESS, playlist, job_dir)
    assert result.returncode != 0 and not output.exists()
    assert "Format not on whitelist" in result.log and "secret.ts" not in result.log
    if form == "file:{abs}":  # control: without the safety options ffmpeg encodes the other file
        result, output = await _run(ff, Method.COMPRESS, playlist, job_dir, safe=False)
        assert result.returncode == 0 and (await probe(output, NO_FFPROBE)).duration == pytest.approx(1.0, abs=0.1)


async def test_ffconcat_script_named_mp4_is_refused(
    ff: str, clips: dict[str, Path], tmp_path: Path, prober: Settings
) -> None:
    shutil.copy(clips["secret"], tmp_path / "neighbour.ts")  # relative names pass ffconcat's own "safe" mode
    script = media.ffconcat_pointing_at(tmp_path, "neighbour.ts")
    with pytest.raises(ProbeError, match=REFUSED):
        await probe(script, prober)
    result, output = await _run(ff, Method.COMPRESS, script, tmp_path)
    assert result.returncode != 0 and not output.exists() and "Format not on whitelist" in result.log


# --- real runs --------------------------------------------------------------------------------------------------


def top_level_boxes(path: Path) -> list[str]:
    boxes, data, offset = [], path.read_bytes(), 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        boxes.append(kind.decode("latin-1"))
        offset += size
    return boxes


async def run_method(ff: str, method: Method, source: Path, tmp_path: Path, fmt: str):
    updates: list[ProgressUpdate] = []

    async def on_progress(update: ProgressUpdate) -> None:
        updates.append(update)

    argv, output = seed_argv(ff, method, source, out_dir(tmp_path), fmt, threads=2)
    result = await run_ffmpeg(argv, log_path=tmp_path / "logs" / f"{output.stem}.log", on_progress=on_progress)
    check(result)
    assert updates and updates[-1].ended and updates[-1].out_time_s == pytest.approx(2.0, abs=0.1)
    assert all(not u.ended for u in updates[:-1])
    assert (tmp_path / "logs" / f"{output.stem}.log").read_text(errors="replace") == result.log
    return output, await probe(output, NO_FFPROBE)


@pytest.mark.parametrize(
    ("fmt", "container", "vcodec", "acodec"),
    [
        ("mp4", "mp4", "h264", "aac"),
        ("mov", "mov", "h264", "aac"),
        ("mkv", "matroska", "h264", "aac"),
        ("webm", "webm", "vp9", "opus"),
    ],
)
async def test_compress(ff, clips, tmp_path, fmt: str, container: str, vcodec: str, acodec: str) -> None:
    _, info = await run_method(ff, Method.COMPRESS, clips["av"], tmp_path, fmt)
    assert container in info.format_name.split(",")
    assert (info.video.codec, info.video.width, info.video.height, info.audio.codec) == (vcodec, 320, 240, acodec)
    assert info.duration == pytest.approx(2.0, abs=0.1)


async def test_extract_audio(ff, clips, tmp_path) -> None:
    _, info = await run_method(ff, Method.EXTRACT_AUDIO, clips["av"], tmp_path, "mp3")
    assert info.format_name == "mp3" and info.video is None and info.stream_count == 1
    assert info.audio.codec == "mp3" and info.duration == pytest.approx(2.0, abs=0.1)


async def test_resize(ff, clips, tmp_path) -> None:
    _, info = await run_method(ff, Method.RESIZE, clips["av"], tmp_path, "mp4")
    assert (info.video.codec, info.video.width, info.video.height) == ("h264", 1280, 720)
    assert info.audio.codec == "aac"


@pytest.mark.parametrize("fmt", ["mp4", "mov"])
async def test_convert_format_is_web_ready(ff, clips, tmp_path, fmt: str) -> None:
    output, info = await run_method(ff, Method.CONVERT_FORMAT, clips["av"], tmp_path, fmt)
    boxes = top_level_boxes(output)
    assert boxes.index("moov") < boxes.index("mdat"), boxes
    assert top_level_boxes(clips["av"]).index("moov") > top_level_boxes(clips["av"]).index("mdat")  # source: not
    with av.open(str(output)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.profile == "High" and stream.codec_context.pix_fmt == "yuv420p"
    assert info.audio.codec == "aac"


def chroma_deviation(path: Path) -> int:
    """The largest distance from neutral grey (128) in the U and V planes of the first frames."""
    worst = 0
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            rows = frame.reformat(format="yuv420p").to_ndarray().astype(int)  # (h*3/2, w): Y, then U, then V
            chroma = rows[frame.height :]
            worst = max(worst, int(abs(chroma - 128).max()))
            if index == 5:
                break
    return worst


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
async def test_black_and_white(ff, clips, tmp_path, fmt: str) -> None:
    output, info = await run_method(ff, Method.BLACK_AND_WHITE, clips["av"], tmp_path, fmt)
    assert chroma_deviation(clips["av"]) > 50  # the colourful source: the check below can fail
    assert chroma_deviation(output) <= 3
    assert info.video.width == 320


async def test_video_methods_accept_a_source_without_audio(ff, clips, tmp_path) -> None:
    argv, output = seed_argv(ff, Method.COMPRESS, clips["video_only"], out_dir(tmp_path), "mp4")
    check(await run_ffmpeg(argv, log_path=tmp_path / "c.log"))
    info = await probe(output, NO_FFPROBE)
    assert info.audio is None and info.video is not None and info.video.codec == "h264"


# --- real failures ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "method", "fmt", "expected"),
    [
        (
            "zero",
            Method.COMPRESS,
            "mp4",
            "moov atom not found\nError opening input: Invalid data found when processing input",
        ),
        ("text", Method.BLACK_AND_WHITE, "mp4", "Error opening input: Invalid data found when processing input"),
        ("truncated", Method.RESIZE, "mkv", "moov atom not found\nError opening input: Invalid data found"),
        ("video_only", Method.EXTRACT_AUDIO, "mp3", "matches no streams"),
        ("audio_only", Method.COMPRESS, "mp4", "Failed to set value '0:V:0' for option 'map'"),
    ],
)
async def test_real_failures(ff, clips, tmp_path, kind: str, method: Method, fmt: str, expected: str) -> None:
    result, output = await _run(ff, method, clips[kind], tmp_path, fmt)
    assert result.returncode != 0 and not output.exists()
    summary = summarize_stderr(result.log)
    assert expected in summary
    assert "file:" not in summary and str(tmp_path) not in summary and " @ 0x" not in summary
    assert len(summary.splitlines()) <= 4
    with pytest.raises(FfmpegFailedError) as info:
        check(result)
    assert info.value.returncode == result.returncode and info.value.summary == summary
    assert output.with_suffix(".log").read_text() == result.log  # the log is kept on failure too


async def test_missing_binary_is_an_ffmpeg_error(tmp_path: Path) -> None:
    with pytest.raises(FfmpegError, match="cannot start ffmpeg"):
        await run_ffmpeg([str(tmp_path / "no-ffmpeg"), "-version"], log_path=tmp_path / "x.log")


# --- cancellation ----------------------------------------------------------------------------------------------


def pid_of_process_writing(marker: str) -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    return int(entry.name)
            except OSError:
                pass
    return None


def slow_argv(ff: str, output: Path) -> list[str]:
    # -re: read the 10-minute input at its native rate, so ffmpeg is slow without using the CPU
    return [
        ff,
        "-hide_banner",
        "-nostdin",
        "-y",
        "-nostats",
        "-progress",
        "pipe:1",
        "-loglevel",
        "info",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x64:rate=10:duration=600",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-f",
        "mp4",
        str(output),
    ]


def kill_if_still_running(pid: int | None, marker: str) -> None:
    """Test hygiene when an assertion failed: never leave a 10-minute ffmpeg behind."""
    try:
        if pid is not None and marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
            os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def assert_group_gone(pgid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert not Path(f"/proc/{pgid}").exists()


async def test_cancelling_the_run_kills_ffmpeg(ff: str, tmp_path: Path) -> None:
    output = tmp_path / f"slow-{uuid.uuid4().hex}.mp4"
    started = asyncio.Event()

    async def on_progress(update: ProgressUpdate) -> None:
        started.set()

    task = asyncio.create_task(
        run_ffmpeg(slow_argv(ff, output), log_path=tmp_path / "slow.log", on_progress=on_progress)
    )
    pid = None
    try:
        await asyncio.wait_for(started.wait(), 15)
        pid = pid_of_process_writing(output.name)
        assert pid is not None and os.getpgid(pid) == pid  # its own process group
        os.killpg(pid, 0)  # alive
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        assert_group_gone(pid)
    finally:
        kill_if_still_running(pid or pid_of_process_writing(output.name), output.name)
    assert "testsrc2" in (tmp_path / "slow.log").read_text()  # the log so far was kept


async def test_a_failing_progress_callback_kills_ffmpeg(ff: str, tmp_path: Path) -> None:
    output = tmp_path / f"slow-{uuid.uuid4().hex}.mp4"
    seen: list[int | None] = []

    async def on_progress(update: ProgressUpdate) -> None:
        seen.append(pid_of_process_writing(output.name))
        raise RuntimeError("store unavailable")

    try:
        with pytest.raises(RuntimeError, match="store unavailable"):
            await asyncio.wait_for(
                run_ffmpeg(slow_argv(ff, output), log_path=tmp_path / "s.log", on_progress=on_progress), 15
            )
        assert seen and seen[0] is not None
        assert_group_gone(seen[0])
    finally:
        kill_if_still_running(pid_of_process_writing(output.name), output.name)


def test_generated_clips_are_cached(clips: dict[str, Path]) -> None:
    before = clips["av"].stat()
    again = media.make_clip(clips["av"].parent, "av.mp4", width=320, height=240, seconds=2)
    assert again == clips["av"] and again.stat().st_mtime_ns == before.st_mtime_ns
    assert stat.S_ISREG(before.st_mode) and not list(clips["av"].parent.glob("*.partial.*"))
