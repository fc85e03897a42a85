"""Segmented WebVTT for HLS subtitle renditions, cut in Python from one WebVTT file ffmpeg wrote.

ffmpeg's HLS muxer takes at most one subtitle stream per variant, and its segment muxer cuts WebVTT at
cue boundaries (segments of arbitrary length, with gaps). A player wants a subtitle playlist whose
segments line up with the video's; so ffmpeg converts each text track to one
WebVTT file and this module cuts it: every cue goes into each segment it overlaps (the HLS spec's
rule), and every segment carries `X-TIMESTAMP-MAP` tying its times to the MPEG-TS clock of the video
segments (which start near 1.4 s, not 0), or players would show every line 1.4 s early.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

_TIMING = re.compile(r"^\s*((?:\d+:)?\d{1,2}:\d{2}\.\d{3})\s+-->\s+((?:\d+:)?\d{1,2}:\d{2}\.\d{3})(.*)$")
SEGMENT_NAME = "segment_{:05d}.vtt"
PLAYLIST_NAME = "index.m3u8"


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    settings: str  # what follows the timing on its line (position, alignment), kept as ffmpeg wrote it
    text: tuple[str, ...]


def _seconds(stamp: str) -> float:
    parts = stamp.split(":")
    seconds = float(parts[-1]) + 60 * int(parts[-2])
    return seconds + 3600 * int(parts[0]) if len(parts) == 3 else seconds


def _stamp(seconds: float) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def parse_cues(text: str) -> list[Cue]:
    """The cues of a WebVTT file (identifiers, NOTE and STYLE blocks dropped)."""
    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = block.split("\n")
        for i, line in enumerate(lines):
            match = _TIMING.match(line)
            if match:
                payload = tuple(entry for entry in lines[i + 1 :] if entry.strip())
                cues.append(Cue(_seconds(match[1]), _seconds(match[2]), match[3].strip(), payload))
                break
    return cues


def segment_cues(cues: list[Cue], lengths: list[float], mpegts_origin: int) -> list[str]:
    """One WebVTT text per segment; `lengths` are the video segments' durations, so both line up."""
    header = f"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{mpegts_origin},LOCAL:00:00:00.000\n"
    segments, start = [], 0.0
    for length in lengths:
        end = start + length
        body = [
            f"\n{_stamp(cue.start)} --> {_stamp(cue.end)}{' ' + cue.settings if cue.settings else ''}\n"
            + "".join(f"{line}\n" for line in cue.text)
            for cue in cues
            if cue.start < end and cue.end > start
        ]
        segments.append(header + "".join(body))
        start = end
    return segments


def media_playlist(lengths: list[float]) -> str:
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{math.ceil(max(lengths, default=1))}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
    ]
    for i, length in enumerate(lengths):
        lines += [f"#EXTINF:{length:.6f},", SEGMENT_NAME.format(i)]
    return "\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n"


def segment_lengths(media_playlist_text: str) -> list[float]:
    """The EXTINF durations of an HLS media playlist, in order."""
    return [
        float(line.split(":", 1)[1].split(",", 1)[0])
        for line in media_playlist_text.splitlines()
        if line.startswith("#EXTINF:")
    ]


def write_segmented(source_vtt: Path, folder: Path, lengths: list[float], mpegts_origin: int) -> int:
    """Cut `source_vtt` into `folder`/segment_NNNNN.vtt plus its index.m3u8; returns the segment count."""
    cues = parse_cues(source_vtt.read_text(encoding="utf-8"))
    segments = segment_cues(cues, lengths, mpegts_origin)
    folder.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(segments):
        (folder / SEGMENT_NAME.format(i)).write_text(text, encoding="utf-8")
    (folder / PLAYLIST_NAME).write_text(media_playlist(lengths), encoding="utf-8")
    return len(segments)
