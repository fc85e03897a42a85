"""What every output builder shares: the plan it returns, the ffmpeg command's head and tail, clips.

A builder turns one validated output spec plus the probed source into an `OutputPlan`: the ffmpeg
runs (plain argv lists) that write its files into one directory, and an optional `finish` that writes
side files (a storyboard's WebVTT) once they ran. Builders never run anything, so their argv can be
pinned by tests, and they refuse what the source cannot give with `OutputError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mediaflow.media.inputs import INPUT_SAFETY_OPTIONS, file_url
from mediaflow.media.operations import GLOBAL_OPTIONS
from mediaflow.media.outputs.params import Clip
from mediaflow.media.probe import MediaInfo, VideoStreamInfo


class OutputError(Exception):
    """This output cannot be made from this source; the message is fit to show to the user."""


@dataclass(frozen=True)
class Step:
    label: str  # names the run's log file: "<output>.<label>.log"
    argv: list[str]
    duration: float | None  # seconds of media the run writes, for progress; None: progress only at its end


@dataclass
class OutputPlan:
    steps: list[Step]
    weight: float  # estimated cost, relative to one second of 720p H.264: overall progress is weighted by it
    finish: Callable[[Path], None] | None = None
    notes: list[str] = field(default_factory=list)  # what was adapted to the source, for the user


@dataclass(frozen=True)
class Source:
    """The input of every run: a local file, what probing found in it, and how to run ffmpeg on it."""

    path: Path
    info: MediaInfo
    ffmpeg: str
    threads: int = 0  # FFMPEG_THREADS; 0 lets ffmpeg decide
    limits: tuple[str, ...] = ()  # decode limits (limits.py) for every input; a clip's own -t comes after

    def head(self, start: float = 0.0, duration: float | None = None) -> list[str]:
        """ffmpeg, its global options and the input with the safety options every input gets."""
        return [self.ffmpeg, *GLOBAL_OPTIONS, *self.input(start, duration)]

    def input(self, start: float = 0.0, duration: float | None = None) -> list[str]:
        seek = ["-ss", number(start)] if start > 0 else []
        limit = ["-t", number(duration)] if duration is not None else []
        return [*INPUT_SAFETY_OPTIONS, *self.limits, *seek, *limit, "-i", file_url(self.path)]

    def tail(self, muxer: str, output: Path) -> list[str]:
        threads = ["-threads", str(self.threads)] if self.threads > 0 else []
        return [*threads, "-f", muxer, file_url(output)]

    @property
    def duration(self) -> float | None:
        return self.info.duration

    def need_video(self, what: str) -> VideoStreamInfo:
        if self.info.video is None:
            raise OutputError(f"the source has no video stream, so it cannot make {what}")
        return self.info.video

    def need_audio(self, what: str) -> None:
        if self.info.audio is None:
            raise OutputError(f"the source has no audio stream, so it cannot make {what}")


def number(value: float) -> str:
    """A number for an argv or a filter graph: plain decimal, no exponent, at most millisecond digits."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def even(value: float) -> int:
    """Chroma-subsampled (4:2:0) frames need even sides."""
    return max(2, int(round(value / 2)) * 2)


def clip_range(clip: Clip | None, source: Source) -> tuple[float, float | None]:
    """(start, duration) of the part of the source an output uses; duration None means to the end."""
    if clip is None:
        return 0.0, None
    total = source.duration
    if total is not None and clip.start >= total:
        raise OutputError(f"clip.start ({clip.start:g} s) is at or past the end of the source ({total:.2f} s)")
    end = clip.end if total is None or clip.end is None else min(clip.end, total)
    return clip.start, None if end is None else end - clip.start


def media_seconds(start: float, duration: float | None, source: Source) -> float | None:
    if duration is not None:
        return duration
    return None if source.duration is None else max(0.0, source.duration - start)


def pixels_factor(width: int, height: int) -> float:
    """A frame's encoding cost relative to 720p (never below a small floor: decoding costs too)."""
    return max(0.05, width * height / (1280 * 720))


def scaled_size(
    src_w: int, src_h: int, width: int | None, height: int | None, fit: str, upscale: bool
) -> tuple[int, int, int, int] | None:
    """The frame size for a requested width/height: (scaled_w, scaled_h, out_w, out_h), or None to keep it.

    One side given keeps the aspect ratio. Both: `contain` fits inside the box, `cover` fills it and
    crops the overflow, `stretch` is exactly the box. Never larger than the source unless `upscale`
    (a `cover` box then shrinks with the same aspect ratio rather than enlarging the frame).
    """
    if width is None and height is None:
        return None
    if width is None or height is None:
        scale = width / src_w if width is not None else height / src_h  # type: ignore[operator]
        scale = scale if upscale else min(scale, 1.0)
        w, h = even(src_w * scale), even(src_h * scale)
        return w, h, w, h
    if fit == "stretch":
        w, h = (width, height) if upscale else (min(width, src_w), min(height, src_h))
        return w, h, w, h
    if fit == "contain":
        scale = min(width / src_w, height / src_h)
        scale = scale if upscale else min(scale, 1.0)
        w, h = even(src_w * scale), even(src_h * scale)
        return w, h, w, h
    scale = max(width / src_w, height / src_h)  # cover
    shrink = 1.0 if upscale or scale <= 1 else 1 / scale
    box_w, box_h = even(width * shrink), even(height * shrink)
    scaled_w = max(box_w, 2 * math.ceil(src_w * scale * shrink / 2 - 1e-6))
    scaled_h = max(box_h, 2 * math.ceil(src_h * scale * shrink / 2 - 1e-6))
    return scaled_w, scaled_h, box_w, box_h
