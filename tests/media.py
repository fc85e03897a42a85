"""Test media made on the spot with ffmpeg's lavfi sources (testsrc2, sine), plus broken and hostile files.

Every maker writes into `directory` and caches by file name: asking twice for the same name returns
the existing file, so a session-scoped directory makes each clip once. Files are written under a
temporary name and renamed, so a failed run never leaves a half-made clip behind to be reused.
The ffmpeg used is resolved like the product's (FFMPEG_BINARY, `ffmpeg` on PATH, imageio-ffmpeg).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from mediaflow.media.inputs import ffmpeg_binary
from mediaflow.settings import Settings


@functools.cache
def ffmpeg() -> str:
    return ffmpeg_binary(Settings(_env_file=None))


def ffprobe() -> str | None:
    """An ffprobe for the tests: on PATH, else the static one `scripts/setup.sh --test` installs."""
    installed = (
        Path(__file__).resolve().parent.parent / ".deps/ffprobe/node_modules/@ffprobe-installer/linux-x64/ffprobe"
    )
    return shutil.which("ffprobe") or (str(installed) if installed.is_file() else None)


# The encoder options every generated H.264 test clip uses: fast, 8-bit 4:2:0 (what players expect).
X264_FAST = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


def tone(frequency: int, seconds: float, layout: str = "stereo") -> list[str]:
    """A lavfi sine input (48 kHz) in `layout` ("stereo", "5.1", ...): the test corpora's audio."""
    return [
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency={frequency}:sample_rate=48000:duration={seconds},aformat=channel_layouts={layout}",
    ]


def _generate(path: Path, args: list[str]) -> Path:
    if path.exists():
        return path
    partial = path.with_name(f"{path.stem}.partial{path.suffix}")  # keeps the suffix ffmpeg picks the muxer by
    result = subprocess.run(
        [ffmpeg(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args, str(partial)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg could not make {path.name} (exit {result.returncode}): {result.stderr.strip()}")
    os.replace(partial, path)
    return path


def make_clip(
    directory: Path,
    name: str = "clip.mp4",
    *,
    width: int = 640,
    height: int = 360,
    seconds: float = 3,
    fps: int = 30,
    audio: bool = True,
) -> Path:
    """An H.264 (+ AAC 48 kHz sine) clip; the container follows the name (mp4, mov, mkv, ts).

    MP4s are written as ffmpeg writes them by default: moov atom at the end (not faststart).
    """
    args = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac"] if audio else []
    return _generate(Path(directory) / name, args)


def detailed_clip(
    directory: Path,
    name: str = "detailed.mp4",
    *,
    width: int = 480,
    height: int = 270,
    seconds: float = 6,
    fps: int = 30,
    gop_seconds: float = 1,
    noise: int = 8,
    audio: bool = True,
) -> Path:
    """A clip that is hard to encode and easy to misalign: testsrc2 plus temporal noise, near-lossless
    x264 (CRF 8) with B-frames and a closed GOP every `gop_seconds`, AAC sine audio.

    The noise changes every frame, so comparing frame N with frame N+1 scores far lower than with
    itself: a quality check with an off-by-one sync fails loudly on it.
    """
    gop = max(1, round(gop_seconds * fps))
    args = [
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds},noise=alls={noise}:allf=t",
    ]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    args += [
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "8",
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-sc_threshold",
        "0",
        "-pix_fmt",
        "yuv420p",
    ]
    args += ["-c:a", "aac"] if audio else []
    return _generate(Path(directory) / name, args)


def audio_only(directory: Path, name: str = "audio_only.m4a", *, seconds: float = 2) -> Path:
    """A sine tone with no video stream: AAC in .m4a, or MP3 if the name ends in .mp3."""
    codec = "libmp3lame" if name.endswith(".mp3") else "aac"
    args = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}", "-c:a", codec]
    return _generate(Path(directory) / name, args)


def zero_byte(directory: Path, name: str = "zero_byte.mp4") -> Path:
    path = Path(directory) / name
    path.touch()
    return path


def text_as_mp4(directory: Path, name: str = "text.mp4") -> Path:
    path = Path(directory) / name
    if not path.exists():
        path.write_text("This is a text file, not a video.\n" * 20)
    return path


def truncated_mp4(directory: Path, name: str = "truncated.mp4") -> Path:
    """The first 30% of a normal (moov-at-the-end) MP4: no moov atom, so nothing can read it."""
    path = Path(directory) / name
    if not path.exists():
        whole = make_clip(directory, "truncation_source.mp4", width=320, height=240, seconds=2).read_bytes()
        partial = path.with_name(f"{path.stem}.partial{path.suffix}")
        partial.write_bytes(whole[: len(whole) * 3 // 10])
        os.replace(partial, path)
    return path


def hls_playlist_pointing_at(directory: Path, target: str, name: str | None = None) -> Path:
    """A one-segment HLS playlist (.m3u8) whose segment is `target` (a URL, an absolute or relative path)."""
    name = name or f"playlist-{hashlib.sha1(target.encode()).hexdigest()[:10]}.m3u8"
    path = Path(directory) / name
    path.write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:2.0,\n{target}\n#EXT-X-ENDLIST\n"
    )
    return path


def ffconcat_pointing_at(directory: Path, target: str, name: str | None = None) -> Path:
    """An ffconcat script (detected by content, whatever its name) listing `target`."""
    name = name or f"ffconcat-{hashlib.sha1(target.encode()).hexdigest()[:10]}.mp4"
    path = Path(directory) / name
    path.write_text(f"ffconcat version 1.0\nfile '{target}'\n")
    return path


def raw_h264(directory: Path, name: str, *, width: int, height: int, seconds: float = 1, fps: int = 10) -> Path:
    """A raw Annex B H.264 stream (`.h264`): no container, so no declared duration."""
    args = [
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-f",
        "h264",
    ]
    return _generate(Path(directory) / name, args)


def size_switching_h264(
    directory: Path, name: str = "switch.h264", *, first: str = "320x240", then: str = "1920x1080"
) -> Path:
    """A raw H.264 stream whose frames switch size mid-stream: two raw streams concatenated byte for
    byte (a decoder takes the second SPS as a new sequence). Its probe sees only the first size."""
    path = Path(directory) / name
    if not path.exists():
        parts = [
            raw_h264(directory, f"{name}.{i}.h264", width=int(size.split("x")[0]), height=int(size.split("x")[1]))
            for i, size in enumerate((first, then))
        ]
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(b"".join(part.read_bytes() for part in parts))
        os.replace(partial, path)
    return path


def huge_frame_h264(directory: Path, name: str = "huge.h264", *, width: int = 8192, height: int = 4320) -> Path:
    """One black 8192x4320 frame as raw H.264: ~100 KB on disk, gigabytes once decoded and encoded."""
    args = [
        "-f",
        "lavfi",
        "-i",
        f"color=c=black:size={width}x{height}:rate=1:duration=1",
        "-frames:v",
        "1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-f",
        "h264",
    ]
    return _generate(Path(directory) / name, args)


# The nine outputs of issue 13's example request (the spec tests accept it; the benchmark runs it).
NINE_OUTPUTS = [
    {
        "name": "web",
        "type": "video",
        "format": "mp4",
        "video": {"codec": "h264", "crf": 23, "preset": "medium", "height": 720, "fps": 30},
        "audio": {"codec": "aac", "bitrate": "128k"},
        "clip": {"start": 2.0, "end": 8.0},
    },
    {"name": "small", "type": "video", "format": "mp4", "video": {"codec": "h265", "height": 480}},
    {"name": "modern", "type": "video", "format": "webm", "video": {"codec": "av1", "height": 360}},
    {"name": "stream", "type": "hls", "renditions": "auto", "segment_seconds": 4},
    {"name": "poster", "type": "thumbnails", "count": 5, "width": 320, "format": "jpg"},
    {"name": "scrub", "type": "storyboard", "interval_seconds": 2, "columns": 5, "width": 160},
    {"name": "preview", "type": "animation", "format": "gif", "start": 1, "duration": 2, "width": 480, "fps": 12},
    {"name": "voice", "type": "audio", "format": "mp3", "audio": {"bitrate": "192k", "loudness": -16}},
    {"name": "wave", "type": "waveform", "width": 800, "height": 160},
]
