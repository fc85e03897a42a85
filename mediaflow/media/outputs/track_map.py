"""Which of the source's audio and subtitle tracks an output keeps, and the ffmpeg options that keep them.

Pure functions of the probed `SourceTracks` and the output's `audio_tracks` / `subtitle_tracks`
selection; the video, HLS and DASH builders share them, so a track rule lives in one place. A plain
source (one or no audio track, no subtitles) with the default selection never gets here: its argv is
the one every builder made before tracks existed.

Rules: tracks keep the source's order, language and default flag (exactly one default audio track: the
source's, else the first kept). Channels are kept where the codec holds them (AAC and Opus up to 7.1),
downmixed to stereo where it does not (MP3) or where the output asks for 2 channels. Text subtitles
become the container's text format (MP4/MOV: mov_text, WebM: WebVTT, Matroska: as they are); bitmap
subtitles (PGS, DVD, DVB) cannot become text, so they are skipped with a note, never a failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from mediaflow.media.tracks import AudioTrack, SourceTracks, SubtitleTrack

# ISO 639-2 has two codes for some languages (bibliographic / terminology): either one selects both.
_SAME_LANGUAGE = {
    "alb": "sqi",
    "arm": "hye",
    "baq": "eus",
    "bur": "mya",
    "chi": "zho",
    "cze": "ces",
    "dut": "nld",
    "fre": "fra",
    "geo": "kat",
    "ger": "deu",
    "gre": "ell",
    "ice": "isl",
    "mac": "mkd",
    "mao": "mri",
    "may": "msa",
    "per": "fas",
    "rum": "ron",
    "slo": "slk",
    "tib": "bod",
    "wel": "cym",
}
# The most channels each audio encoder takes here; past that, a stereo downmix.
MAX_CHANNELS = {"aac": 8, "opus": 8, "mp3": 2, "flac": 8, "pcm": 8}
# Subtitle codec per container for text tracks; Matroska keeps the text formats it holds as they are.
SUBTITLE_CODECS = {"mp4": "mov_text", "mov": "mov_text", "webm": "webvtt"}
MATROSKA_TEXT = frozenset({"subrip", "ass", "ssa", "webvtt"})

Selection = Literal["all"] | Sequence[str]


def _canonical(code: str) -> str:
    return _SAME_LANGUAGE.get(code, code)


def _wanted(language: str, selection: Selection) -> bool:
    return selection == "all" or _canonical(language) in {_canonical(c) for c in selection}


def _languages(tracks: Sequence[AudioTrack] | Sequence[SubtitleTrack]) -> str:
    return ", ".join(t.language for t in tracks)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


@dataclass
class TrackChoice:
    audio: tuple[AudioTrack, ...]  # kept, in the source's order
    subtitles: tuple[SubtitleTrack, ...]  # text tracks kept
    notes: list[str] = field(default_factory=list)

    @property
    def default_audio(self) -> int:
        """The position (among the kept tracks) of the one default audio track."""
        return next((i for i, t in enumerate(self.audio) if t.default), 0)

    @property
    def default_subtitle(self) -> int | None:
        return next((i for i, t in enumerate(self.subtitles) if t.default), None)


def choose_tracks(
    tracks: SourceTracks,
    audio: Selection,
    subtitles: Selection,
    *,
    with_audio: bool,
    with_subtitles: bool = True,
    subtitles_skipped_because: str = "",
) -> TrackChoice:
    """The tracks an output keeps, with notes saying what was kept and what was left out and why."""
    notes: list[str] = []
    kept_audio: tuple[AudioTrack, ...] = ()
    if with_audio and tracks.audio:
        kept_audio = tuple(t for t in tracks.audio if _wanted(t.language, audio))
        if not kept_audio:
            notes.append(
                f"no audio track in {', '.join(audio)}: the source has {_languages(tracks.audio)}; "
                "the output has no audio"
            )
        elif len(tracks.audio) > 1 or audio != "all":
            notes.append(f"{_count(len(kept_audio), 'audio track')} kept ({_languages(kept_audio)})")
    text = [s for s in tracks.subtitles if not s.bitmap and _wanted(s.language, subtitles)]
    for bitmap in (s for s in tracks.subtitles if s.bitmap and _wanted(s.language, subtitles)):
        notes.append(
            f"the {bitmap.language} subtitle track ({bitmap.codec}) skipped: it is made of pictures, which "
            "cannot be turned into text subtitles"
        )
    kept_subtitles: tuple[SubtitleTrack, ...] = ()
    if text and not with_subtitles:
        notes.append(
            f"{_count(len(text), 'subtitle track')} ({_languages(text)}) not kept: {subtitles_skipped_because}"
        )
    elif text:
        kept_subtitles = tuple(text)
        notes.append(f"{_count(len(text), 'subtitle track')} kept ({_languages(text)})")
    elif subtitles != "all" and tracks.text_subtitles:
        notes.append(f"no subtitle track in {', '.join(subtitles)}: the source has {_languages(tracks.text_subtitles)}")
    return TrackChoice(kept_audio, kept_subtitles, notes)


def channels_for(track: AudioTrack, codec: str, asked: int | None) -> int | None:
    """`-ac` for one kept track: None keeps its channels; 2 where the codec cannot hold them."""
    if asked is not None:
        return asked
    if track.channels is not None and track.channels > MAX_CHANNELS.get(codec, 2):
        return 2
    return None


def audio_layout_args(choice: TrackChoice, codec: str, asked_channels: int | None) -> tuple[list[str], list[str]]:
    """Per-track channel options (after the shared audio encoder options) and notes on downmixes.

    libopus takes 5.1 only in the "5.1" layout: a "5.1(side)" track (what AC-3 and most files call 5.1)
    is relabelled without moving a sample; either pair is the surround pair, and players treat them alike.
    """
    args: list[str] = []
    notes: list[str] = []
    for position, track in enumerate(choice.audio):
        channels = channels_for(track, codec, asked_channels)
        if asked_channels is not None and track.channels is not None and asked_channels < track.channels:
            notes.append(
                f"the {track.language} audio track ({_layout(track)}) downmixed to {asked_channels} "
                "channels, as audio.channels asks"
            )
        if channels is not None and asked_channels is None:
            args += [f"-ac:a:{position}", str(channels)]
            notes.append(
                f"the {track.language} audio track ({_layout(track)}) downmixed to stereo: "
                f"{codec} holds at most {MAX_CHANNELS.get(codec, 2)} channels"
            )
        elif channels is None and (track.channels or 0) > 2:
            notes.append(f"the {track.language} audio track kept in {_layout(track)}")
            if codec == "opus" and track.layout == "5.1(side)":
                args += [f"-filter:a:{position}", "channelmap=channel_layout=5.1"]
    return args, notes


def _layout(track: AudioTrack) -> str:
    """ "5.1" for 5.1(side) and 5.1(back) alike: the difference is no user's concern."""
    if track.layout:
        return track.layout.split("(")[0]
    return f"{track.channels} channels" if track.channels else "unknown layout"


def subtitle_codec_args(choice: TrackChoice, container: str) -> list[str]:
    """MP4/MOV: mov_text, WebM: WebVTT; Matroska: each track as it is, or SubRip for a text format it cannot
    hold (mov_text from an MP4 source)."""
    if not choice.subtitles:
        return []
    if container != "mkv":
        return ["-c:s", SUBTITLE_CODECS[container]]
    codecs = ["copy" if s.codec in MATROSKA_TEXT else "srt" for s in choice.subtitles]
    return [arg for i, codec in enumerate(codecs) for arg in (f"-c:s:{i}", codec)]


def disposition_args(choice: TrackChoice) -> list[str]:
    """Exactly one default audio track (the source's default, else the first kept), subtitles as flagged."""
    args: list[str] = []
    for position, _ in enumerate(choice.audio):
        args += [f"-disposition:a:{position}", "default" if position == choice.default_audio else "0"]
    for position, _ in enumerate(choice.subtitles):
        args += [f"-disposition:s:{position}", "default" if position == choice.default_subtitle else "0"]
    return args


def language_args(choice: TrackChoice) -> list[str]:
    """Languages as probed (and sanitised), written explicitly: a muxer must not fall back to "und"."""
    args: list[str] = []
    for position, track in enumerate(choice.audio):
        args += [f"-metadata:s:a:{position}", f"language={track.language}"]
    for position, sub in enumerate(choice.subtitles):
        args += [f"-metadata:s:s:{position}", f"language={sub.language}"]
    return args
