"""A corpus of sources shaped like real uploads, for the tracks, time and broken-input rules.

Every file is generated on the spot with the bundled ffmpeg (and, for the one bitmap subtitle, PyAV
muxing a hand-made DVD subpicture packet: ffmpeg cannot turn text into bitmaps). No binary fixtures.
Clips are short and small; like tests/media.py, each maker caches by file name in `directory`.
"""

from __future__ import annotations

import os
import struct
from fractions import Fraction
from pathlib import Path

from tests.media import X264_FAST, _generate, make_clip, tone

# Two tones a test can tell apart: the English track is 440 Hz, the French one 660 Hz.
TONES = {"eng": 440, "fra": 660}


def _video(seconds: float, size: str = "320x180", rate: int = 25) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]


def two_languages(directory: Path, name: str = "two_languages.mp4", *, seconds: float = 3) -> Path:
    """Video + two AAC tracks: English (default, titled) and French; MP4 or MKV by the name."""
    args = [
        *_video(seconds),
        *tone(TONES["eng"], seconds),
        *tone(TONES["fra"], seconds),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:a",
        *X264_FAST,
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-metadata:s:a:0",
        "language=eng",
        "-metadata:s:a:0",
        "title=English",
        "-metadata:s:a:1",
        "language=fra",
        "-metadata:s:a:1",
        "title=Français",
        "-disposition:a:0",
        "default",
        "-disposition:a:1",
        "0",
    ]
    return _generate(Path(directory) / name, args)


def surround_ac3(directory: Path, name: str = "surround.mkv", *, seconds: float = 3) -> Path:
    """Video + one AC-3 5.1 track (language eng), as broadcast and disc rips have it."""
    args = [
        *_video(seconds),
        *tone(440, seconds, "5.1"),
        "-map",
        "0:v",
        "-map",
        "1:a",
        *X264_FAST,
        "-c:a",
        "ac3",
        "-b:a",
        "192k",
        "-metadata:s:a:0",
        "language=eng",
    ]
    return _generate(Path(directory) / name, args)


SUBTITLES = {
    "eng": ["Hello there.", "Second line of English."],
    "fra": ["Bonjour.", "Deuxième réplique en français."],
}


def _subrip(directory: Path, language: str) -> Path:
    path = Path(directory) / f"subtitles_{language}.srt"
    if not path.exists():
        first, second = SUBTITLES[language]
        path.write_text(
            f"1\n00:00:00,200 --> 00:00:01,200\n{first}\n\n2\n00:00:01,500 --> 00:00:02,600\n{second}\n\n",
            encoding="utf-8",
        )
    return path


def _spu_packet() -> bytes:
    """One DVD subpicture: a 4x2 block of colour 1, shown at once and hidden after ~1.1 s.

    Layout (DVD SPU): size, offset of the control sequences, the run-length coded fields, then two
    control sequences (start display with palette, alpha, area and field offsets; stop display later).
    """
    fields = b"\x00\x01" + b"\x00\x01"  # per field, one line: "colour 1 to the end of the line"
    first_at = 4 + len(fields)
    second_at = first_at + 24
    # palette (0x03), alpha (0x04), area x 0-3 / y 0-1 (0x05), field offsets 4 and 6 (0x06), start (0x01), end
    first = struct.pack(">HH", 0, second_at) + bytes.fromhex("030123 04fff0 05000003000001 0600040006 01 ff")
    second = struct.pack(">HH", 100, second_at) + bytes([0x02, 0xFF])
    body = fields + first + second
    return struct.pack(">HH", 4 + len(body), first_at) + body


def _dvdsub_track(directory: Path, seconds: float) -> Path:
    import av

    path = Path(directory) / "dvdsub_only.mkv"
    if path.exists():
        return path
    partial = path.with_name("dvdsub_only.partial.mkv")
    with av.open(str(partial), "w") as container:
        stream = container.add_stream("dvd_subtitle")
        stream.metadata["language"] = "deu"
        stream.time_base = Fraction(1, 1000)
        for start_ms in range(500, int(seconds * 1000) - 500, 1000):
            packet = av.Packet(_spu_packet())
            packet.stream = stream
            packet.pts = packet.dts = start_ms
            packet.duration = 900
            packet.time_base = stream.time_base
            container.mux(packet)
    os.replace(partial, path)
    return path


def subtitled_mkv(directory: Path, name: str = "subtitled.mkv", *, seconds: float = 3) -> Path:
    """Video + English audio + two SubRip tracks (eng default, fra) + one DVD bitmap track (deu)."""
    english, french = _subrip(directory, "eng"), _subrip(directory, "fra")
    bitmap = _dvdsub_track(directory, seconds)
    args = [
        *_video(seconds),
        *tone(TONES["eng"], seconds),
        "-i",
        str(english),
        "-i",
        str(french),
        "-i",
        str(bitmap),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:s",
        "-map",
        "3:s",
        "-map",
        "4:s",
        *X264_FAST,
        "-c:a",
        "aac",
        "-c:s:0",
        "srt",
        "-c:s:1",
        "srt",
        "-c:s:2",
        "copy",
        "-metadata:s:a:0",
        "language=eng",
        "-metadata:s:s:0",
        "language=eng",
        "-metadata:s:s:1",
        "language=fra",
        "-metadata:s:s:2",
        "language=deu",
        "-disposition:s:0",
        "default",
        "-disposition:s:1",
        "0",
        "-disposition:s:2",
        "0",
    ]
    return _generate(Path(directory) / name, args)


# (frame rate, seconds) of the three stretches of the variable-frame-rate source
# Longer than the other clips on purpose (10 s, but 160x90): ffmpeg guesses a stream's frame rate from
# about its first 5 s, and the bug only shows when that guess (30) misses the faster stretch after it.
VFR_STRETCHES = ((30, 6.0), (10, 1.0), (60, 3.0))


def vfr_frame_count() -> int:
    return sum(round(rate * seconds) for rate, seconds in VFR_STRETCHES)


def variable_frame_rate(directory: Path, name: str = "vfr.mp4", *, size: str = "160x90") -> Path:
    """A screen-capture-like source: 30, then 10, then 60 fps (370 frames in 10 s), a keyframe every 24
    frames whatever the rate (so chunks straddle the changes), AAC audio. ffmpeg's rate guess from the
    first seconds is 30 fps: encoded on that grid, half the 60 fps frames collide and vanish."""
    parts = [
        f"testsrc2=size={size}:rate={rate}:duration={seconds}[v{i}]" for i, (rate, seconds) in enumerate(VFR_STRETCHES)
    ]
    graph = (
        ";".join(parts)
        + ";"
        + "".join(f"[v{i}]" for i in range(len(VFR_STRETCHES)))
        + f"concat=n={len(VFR_STRETCHES)}:v=1:a=0[v]"
    )
    total = sum(seconds for _, seconds in VFR_STRETCHES)
    args = [
        "-filter_complex",
        graph,
        *tone(440, total),
        "-map",
        "[v]",
        "-map",
        "0:a",
        "-fps_mode",
        "passthrough",
        "-enc_time_base",
        "1/600",
        *X264_FAST,
        "-g",
        "24",
        "-c:a",
        "aac",
        "-video_track_timescale",
        "600",
    ]
    return _generate(Path(directory) / name, args)


def sync_marked(directory: Path, name: str = "sync_marked.mp4", *, seconds: float = 4) -> Path:
    """A white flash and a 1 kHz beep together at every whole second (40 ms each), H.264 with B-frames
    and AAC (1024 samples of encoder priming): what A/V sync is measured on."""
    video = (
        f"color=c=black:size=160x90:rate=25:duration={seconds},drawbox=color=white:t=fill:enable='lt(mod(t,1),0.04)'"
    )
    audio = f"sine=frequency=1000:sample_rate=48000:duration={seconds},volume=0:enable='gte(mod(t,1),0.04)'"
    args = ["-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio, "-c:v", "libx264", "-preset", "veryfast"]
    args += ["-g", "25", "-bf", "2", "-pix_fmt", "yuv420p", "-c:a", "aac"]
    return _generate(Path(directory) / name, args)


def edit_listed_cut(directory: Path, name: str = "edit_list.mp4", *, cut_at: float = 1.3) -> Path:
    """A stream-copy cut of `sync_marked` starting between keyframes: the muxer keeps the frames from
    the keyframe before and writes an edit list that hides them; a viewer sees the source from `cut_at`
    (flash and beep at 0.7, 1.7 and 2.7 s, 2.7 s in all)."""
    whole = sync_marked(directory)
    return _generate(Path(directory) / name, ["-ss", str(cut_at), "-i", str(whole), "-c", "copy"])


def truncated_upload(directory: Path, name: str = "truncated_faststart.mp4", *, keep: float = 0.6) -> Path:
    """The first `keep` of a faststart MP4: the index is complete, the media data stops part-way."""
    path = Path(directory) / name
    if not path.exists():
        whole = _generate(
            Path(directory) / "truncation_faststart_source.mp4",
            [*_video(4), *tone(440, 4), *X264_FAST, "-c:a", "aac", "-movflags", "+faststart"],
        )
        data = whole.read_bytes()
        partial = path.with_name(f"{path.stem}.partial{path.suffix}")
        partial.write_bytes(data[: int(len(data) * keep)])
        os.replace(partial, path)
    return path


def audio_only(directory: Path, name: str = "audio_only_tracks.m4a", *, seconds: float = 2) -> Path:
    """A sine tone in .m4a (language eng), no video stream."""
    return _generate(Path(directory) / name, [*tone(440, seconds), "-c:a", "aac", "-metadata:s:a:0", "language=eng"])


def mov_with_timecode_and_cover(directory: Path, name: str = "timecode_cover.mp4", *, seconds: float = 2) -> Path:
    """A camera-style QuickTime-family file: video, audio, timecode (tmcd) tracks and a cover picture.

    Written by the mp4 muxer: ffmpeg's mov muxer drops an attached picture, the mp4 one keeps it
    (as a video stream with the attached_pic disposition) next to the timecode tracks."""
    cover = _generate(Path(directory) / "cover.png", ["-f", "lavfi", "-i", "color=c=red:size=64x64", "-frames:v", "1"])
    args = [
        *_video(seconds),
        *tone(440, seconds),
        "-i",
        str(cover),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:v",
        "-c:v:0",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt:v:0",
        "yuv420p",
        "-c:v:1",
        "png",
        "-disposition:v:1",
        "attached_pic",
        "-c:a",
        "aac",
        "-timecode",
        "01:00:00:00",
    ]
    return _generate(Path(directory) / name, args)


def plain_clip(directory: Path, name: str = "plain.mp4") -> Path:
    """One video and one audio stream, constant frame rate: argv for it must not change."""
    return make_clip(directory, name, width=320, height=180, seconds=2)
