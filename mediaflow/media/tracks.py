"""The source's tracks, as probing finds them: every audio and subtitle stream, and the streams no
output uses (cover art, timecode, data). Whether the frame rate varies is a fact of the picture
(`Picture.frame_rate_mode`, media/picture.py), read through `MediaInfo.variable_frame_rate`.

Built once per source by both probers (`from_ffprobe`, `from_pyav`) and carried on `MediaInfo.tracks`,
so every graph builder maps tracks from the same description. Everything read here comes from the
uploaded file: languages are reduced to a plain ISO 639-2 code (anything else becomes "und") before a
builder may put one in an argv, and titles are only ever reported, never passed to ffmpeg.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Subtitle codecs that are pictures, not text: they cannot become mov_text or WebVTT.
BITMAP_SUBTITLE_CODECS = frozenset({"hdmv_pgs_subtitle", "dvd_subtitle", "dvb_subtitle", "xsub", "dvb_teletext"})
UNDETERMINED = "und"
_LANGUAGE = re.compile(r"^[a-z]{3}$")
_MAX_TITLE = 80


@dataclass(frozen=True)
class AudioTrack:
    index: int  # among the source's audio streams: ffmpeg's `0:a:<index>`
    codec: str
    channels: int | None
    layout: str | None  # "stereo", "5.1(side)", ...
    sample_rate: int | None
    language: str  # ISO 639-2 as the container has it, "und" when unknown
    default: bool
    forced: bool
    title: str | None


@dataclass(frozen=True)
class SubtitleTrack:
    index: int  # among the source's subtitle streams: ffmpeg's `0:s:<index>`
    codec: str
    language: str
    default: bool
    forced: bool
    title: str | None

    @property
    def bitmap(self) -> bool:
        return self.codec in BITMAP_SUBTITLE_CODECS


@dataclass(frozen=True)
class SourceTracks:
    audio: tuple[AudioTrack, ...] = ()
    subtitles: tuple[SubtitleTrack, ...] = ()
    ignored: tuple[str, ...] = ()  # "cover art", "timecode", "data (klv)": streams no output uses

    @property
    def text_subtitles(self) -> tuple[SubtitleTrack, ...]:
        return tuple(s for s in self.subtitles if not s.bitmap)

    @property
    def main_audio(self) -> int:
        """The audio track a one-track output takes: the one flagged default, else the first."""
        return next((t.index for t in self.audio if t.default), 0)

    @property
    def plain(self) -> bool:
        """At most one audio track, of at most two channels, and no subtitles: what every builder's argv
        was made for before tracks existed (and stays exactly as it was)."""
        return len(self.audio) <= 1 and all((t.channels or 0) <= 2 for t in self.audio) and not self.subtitles


def language_code(value: object) -> str:
    """A container's language tag as a code safe to hand to ffmpeg: three lowercase letters, else "und"."""
    text = str(value or "").strip().lower()
    return text if _LANGUAGE.match(text) else UNDETERMINED


def _title(value: object) -> str | None:
    text = " ".join(str(value or "").split())[:_MAX_TITLE]
    return text or None


def _int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _ignored_kind(codec_type: str, timecode: bool, attached_pic: bool, codec: str) -> str | None:
    if codec_type == "video" and attached_pic:
        return "cover art"
    if codec_type == "data":
        return "timecode" if timecode else f"data ({codec or 'unknown'})"
    if codec_type == "attachment":
        return f"attachment ({codec or 'file'})"
    return None


def from_ffprobe(streams: list[dict[str, Any]]) -> SourceTracks:
    """From `ffprobe -show_streams` JSON."""
    audio: list[AudioTrack] = []
    subtitles: list[SubtitleTrack] = []
    ignored: list[str] = []
    for stream in streams:
        kind = str(stream.get("codec_type") or "")
        tags = {str(k).lower(): v for k, v in (stream.get("tags") or {}).items()}
        disposition = stream.get("disposition") or {}
        codec = str(stream.get("codec_name") or "unknown")
        if kind == "audio":
            audio.append(
                AudioTrack(
                    index=len(audio),
                    codec=codec,
                    channels=_int(stream.get("channels")),
                    layout=str(stream["channel_layout"]) if stream.get("channel_layout") else None,
                    sample_rate=_int(stream.get("sample_rate")),
                    language=language_code(tags.get("language")),
                    default=bool(disposition.get("default")),
                    forced=bool(disposition.get("forced")),
                    title=_title(tags.get("title") or tags.get("name")),
                )
            )
        elif kind == "subtitle":
            subtitles.append(
                SubtitleTrack(
                    index=len(subtitles),
                    codec=codec,
                    language=language_code(tags.get("language")),
                    default=bool(disposition.get("default")),
                    forced=bool(disposition.get("forced")),
                    title=_title(tags.get("title")),
                )
            )
        else:
            timecode = stream.get("codec_tag_string") == "tmcd" or "timecode" in tags
            what = _ignored_kind(
                kind, timecode, bool(disposition.get("attached_pic")), str(stream.get("codec_name") or "")
            )
            if what is not None:
                ignored.append(what)
    return SourceTracks(tuple(audio), tuple(subtitles), tuple(ignored))


def from_pyav(container: Any) -> SourceTracks:
    """From an open PyAV container."""
    from av.stream import Disposition

    audio: list[AudioTrack] = []
    subtitles: list[SubtitleTrack] = []
    ignored: list[str] = []
    for stream in container.streams:
        tags = {str(k).lower(): v for k, v in (stream.metadata or {}).items()}
        default, forced = bool(stream.disposition & Disposition.default), bool(stream.disposition & Disposition.forced)
        context = stream.codec_context
        codec = context.codec.canonical_name if context is not None and context.codec is not None else "unknown"
        if stream.type == "audio":
            layout = context.layout.name if context.layout is not None else None
            audio.append(
                AudioTrack(
                    index=len(audio),
                    codec=codec,
                    channels=context.channels or None,
                    layout=layout or None,
                    sample_rate=context.sample_rate or None,
                    language=language_code(tags.get("language")),
                    default=default,
                    forced=forced,
                    title=_title(tags.get("title") or tags.get("name")),
                )
            )
        elif stream.type == "subtitle":
            subtitles.append(
                SubtitleTrack(
                    index=len(subtitles),
                    codec=codec,
                    language=language_code(tags.get("language")),
                    default=default,
                    forced=forced,
                    title=_title(tags.get("title")),
                )
            )
        else:
            what = _ignored_kind(
                stream.type,
                "timecode" in tags,
                bool(stream.disposition & Disposition.attached_pic),
                codec if codec != "unknown" else "",
            )
            if what is not None:
                ignored.append(what)
    return SourceTracks(tuple(audio), tuple(subtitles), tuple(ignored))
