"""Probing a source: its container, duration and first video/audio streams.

ffprobe (`-of json`) when one is configured or on PATH, else PyAV in a thread (imageio-ffmpeg ships
no ffprobe). Both open the file with the same input safety options as the ffmpeg run
(`inputs.INPUT_SAFETY_OPTIONS`), so a playlist or reference file is refused before any of the
files or URLs it names are opened, and what probing accepts, the ffmpeg run accepts too.
Import these names from `ffmpeg_ops` (re-exported there) or from here.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from mediaflow.media.errors import FfmpegError, ProbeError
from mediaflow.media.ffmpeg import summarize_stderr
from mediaflow.media.inputs import INPUT_FORMATS, INPUT_SAFETY_OPTIONS, ffprobe_binary, file_url
from mediaflow.media.picture import Picture, picture_from_ffprobe, picture_from_pyav, read_frame_facts
from mediaflow.media.probe_threads import PROBE_THREADS
from mediaflow.media.subprocesses import kill_group_and_wait, start_in_own_group
from mediaflow.media.tracks import SourceTracks, from_ffprobe, from_pyav

# Demuxers that open other files or URLs named inside the source (playlists, manifests, scripts,
# virtual inputs). Never in INPUT_FORMATS; check_safe_input names them explicitly as well.
UNSAFE_FORMATS = frozenset(
    {
        "hls",
        "applehttp",
        "dash",
        "concat",
        "ffconcat",
        "imf",
        "sdp",
        "rtp",
        "rtsp",
        "image2",
        "image2pipe",
        "dvdvideo",
        "webm_dash_manifest",
        "lavfi",
        "avisynth",
        "vapoursynth",
        "tee",
    }
)

NOT_ACCEPTED = (
    "the source is not an accepted media file: send an ordinary video or audio file (mp4, mov, mkv, webm, "
    "avi, ts, mpeg, mp3, wav, ...); playlists and files that reference other files are refused"
)


@dataclass(frozen=True)
class VideoStreamInfo:
    codec: str
    width: int  # as stored; `display_size` is what a viewer sees
    height: int
    fps: float | None
    index: int = 0  # the stream's index in the container
    picture: Picture = Picture()  # orientation, pixel shape, scanning, colour (picture.py)

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height of the upright picture with square pixels."""
        return self.picture.display_size(self.width, self.height)


@dataclass(frozen=True)
class AudioStreamInfo:
    codec: str
    sample_rate: int | None
    channels: int | None
    bit_rate: int | None


@dataclass(frozen=True)
class MediaInfo:
    format_name: str  # the demuxer's name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    duration: float | None  # seconds
    video: VideoStreamInfo | None  # the first video stream that is not an attached picture (cover art)
    audio: AudioStreamInfo | None  # the first audio stream
    stream_count: int
    bit_rate: int | None
    tracks: SourceTracks = SourceTracks()  # every audio and subtitle stream, the ignored streams (tracks.py)

    @property
    def variable_frame_rate(self) -> bool:
        """One rule for VFR, the picture's (picture.frame_rate_mode_of): timing and source_media read it here."""
        return self.video is not None and self.video.picture.frame_rate_mode == "variable"


def check_safe_input(info: MediaInfo) -> None:
    """Refuse playlists/reference files and any container outside inputs.INPUT_FORMATS."""
    names = set(info.format_name.split(","))
    if names & UNSAFE_FORMATS:
        raise ProbeError(
            f"the source is a {info.format_name} playlist or reference file, which could make ffmpeg read "
            "other files; send the media file itself"
        )
    if not names & set(INPUT_FORMATS):
        raise ProbeError(NOT_ACCEPTED + f" (got {info.format_name})")


async def probe(path: Path, settings: Any, *, timeout: float = 60.0) -> MediaInfo:
    """Probe a local file; raises ProbeError with a message fit for the user."""
    path = Path(path)
    if not path.is_file():  # also keeps FIFOs and devices, which would block the prober, away
        raise ProbeError("the source file does not exist" if not path.exists() else "the source is not a regular file")
    ffprobe = ffprobe_binary(settings)
    try:
        if ffprobe:
            memory_mb = getattr(settings, "FFMPEG_MAX_MEMORY_MB", 0)
            info = await _probe_with_ffprobe(ffprobe, path, timeout, memory_mb * 1024 * 1024 or None)
        else:  # PyAV blocks; on threads of its own, so one that never returns starves nothing else
            info = await PROBE_THREADS.run(_probe_with_pyav, path, timeout=timeout)
        if info.video is not None:
            max_pixels = min(
                getattr(settings, "MAX_INPUT_PIXELS", 4096 * 2160), getattr(settings, "MAX_INPUT_DIMENSION", 4096) ** 2
            )
            picture = await PROBE_THREADS.run(_frame_facts, path, info.video, max_pixels, timeout=timeout)
            info = replace(info, video=replace(info.video, picture=picture))
    except TimeoutError as exc:
        raise ProbeError(f"probing the source took longer than {timeout:g} s") from exc
    if info.video is None and info.audio is None:
        raise ProbeError("the source contains no audio or video stream")
    return info


def _safety_options() -> dict[str, str]:
    return {
        key.lstrip("-"): value
        for key, value in zip(INPUT_SAFETY_OPTIONS[0::2], INPUT_SAFETY_OPTIONS[1::2], strict=True)
    }


def _frame_facts(path: Path, video: VideoStreamInfo, max_pixels: int) -> Picture:
    """What only decoded frames tell (picture.read_frame_facts); a source whose frames cannot be
    decoded, or are larger than the limits allow, keeps what the container said, and its run (or the
    input policy) reports why."""
    import av

    if video.width * video.height > max_pixels:
        return video.picture  # refused later by the input policy; never decoded here
    try:
        return read_frame_facts(path, video.index, video.picture, _safety_options(), max_pixels)
    except (av.error.FFmpegError, ValueError, IndexError):
        return video.picture


async def _probe_with_ffprobe(ffprobe: str, path: Path, timeout: float, max_memory_bytes: int | None) -> MediaInfo:
    argv = [
        ffprobe,
        "-v",
        "error",
        *INPUT_SAFETY_OPTIONS,
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        file_url(path),
    ]
    try:
        proc = await start_in_own_group(argv, max_memory_bytes=max_memory_bytes)
    except OSError as exc:  # a misconfigured FFPROBE_BINARY is not the source's fault
        raise FfmpegError(f"cannot start ffprobe ({ffprobe}): {exc.strerror or exc}") from exc
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        await kill_group_and_wait(proc)
        raise
    if proc.returncode != 0:
        text = stderr.decode("utf-8", "replace")
        if "not on whitelist" in text:
            raise ProbeError(NOT_ACCEPTED)
        detail = summarize_stderr(text, max_lines=1) or f"ffprobe exit code {proc.returncode}"
        raise ProbeError(f"the source is not a readable media file ({detail}){_incomplete_hint(path)}")
    try:
        return media_info_from_ffprobe(json.loads(stdout))
    except ValueError as exc:
        raise ProbeError(f"ffprobe gave unreadable output ({exc})") from exc


def _incomplete_hint(path: Path) -> str:
    """An MP4/MOV whose index never arrived (written last unless faststart): say the file is incomplete."""
    try:
        with path.open("rb") as file:
            head = file.read(12)
    except OSError:
        return ""
    if len(head) == 12 and head[4:8] == b"ftyp":
        return (
            ": it starts as an MP4/MOV file but its index (the moov box) is missing, so the file is incomplete "
            "(an interrupted upload or copy?); send the whole file"
        )
    return ""


def media_info_from_ffprobe(data: dict[str, Any]) -> MediaInfo:
    """MediaInfo from `ffprobe -of json -show_format -show_streams` output."""
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    video = next(
        (s for s in streams if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    return MediaInfo(
        format_name=str(fmt.get("format_name") or "unknown"),
        duration=_number(fmt.get("duration"), float),
        video=None
        if video is None
        else VideoStreamInfo(
            codec=str(video.get("codec_name") or "unknown"),
            width=_number(video.get("width"), int) or 0,
            height=_number(video.get("height"), int) or 0,
            fps=_rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate")),
            index=_number(video.get("index"), int) or 0,
            picture=picture_from_ffprobe(video),
        ),
        audio=None
        if audio is None
        else AudioStreamInfo(
            codec=str(audio.get("codec_name") or "unknown"),
            sample_rate=_number(audio.get("sample_rate"), int) or None,
            channels=_number(audio.get("channels"), int) or None,
            bit_rate=_number(audio.get("bit_rate"), int) or None,
        ),
        stream_count=_number(fmt.get("nb_streams"), int) or len(streams),
        bit_rate=_number(fmt.get("bit_rate"), int) or None,
        tracks=from_ffprobe(streams),
    )


def _number(value: Any, kind: type) -> Any:
    try:
        number = kind(value)  # ffprobe writes many numbers as strings, "N/A" when unknown
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _rate(value: Any) -> float | None:
    try:
        rate = Fraction(str(value))  # "30000/1001"; "0/0" when unknown
    except (ValueError, ZeroDivisionError):
        return None
    return float(rate) if rate > 0 else None


def _probe_with_pyav(path: Path) -> MediaInfo:
    import av
    from av.stream import Disposition

    try:
        container = av.open(file_url(path), container_options=_safety_options())
    except av.error.ArgumentError as exc:  # EINVAL: "Format not on whitelist" is what leads here
        raise ProbeError(NOT_ACCEPTED) from exc
    except av.error.FFmpegError as exc:
        raise ProbeError(f"the source is not a readable media file ({exc.strerror}){_incomplete_hint(path)}") from exc
    with container:
        streams = container.streams
        video = next((s for s in streams.video if not s.disposition & Disposition.attached_pic), None)
        audio = streams.audio[0] if streams.audio else None
        duration = container.duration / av.time_base if container.duration is not None else None
        if duration is None:  # some containers only know their streams' durations
            known = [float(s.duration * s.time_base) for s in streams if s.duration is not None and s.time_base]
            duration = max(known) if known else None
        video_info = audio_info = None
        if video is not None:
            vc = video.codec_context
            rate = video.average_rate or video.guessed_rate
            video_info = VideoStreamInfo(
                codec=vc.codec.canonical_name,
                width=vc.width,
                height=vc.height,
                fps=float(rate) if rate else None,
                index=video.index,
                picture=picture_from_pyav(video),
            )
        if audio is not None:
            ac = audio.codec_context
            audio_info = AudioStreamInfo(
                codec=ac.codec.canonical_name,  # "mp3", not the decoder name "mp3float"
                sample_rate=ac.sample_rate or None,
                channels=ac.channels or None,
                bit_rate=audio.bit_rate or ac.bit_rate or None,
            )
        return MediaInfo(
            format_name=container.format.name,
            duration=duration,
            video=video_info,
            audio=audio_info,
            stream_count=len(streams),
            bit_rate=container.bit_rate or None,
            tracks=from_pyav(container),
        )
