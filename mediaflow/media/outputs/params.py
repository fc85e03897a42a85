"""The building blocks of an output spec: video and audio settings, bitrates, clips, output names.

Everything here is user input that ends up inside an ffmpeg argv or filter graph, so every field is
a bounded number, an enum, or a string held to a strict pattern: nothing free-form ever reaches
ffmpeg. Messages say what is accepted, since they come back to the user as a 422.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

# One encoder speed vocabulary (x264's) for every codec; each builder maps it to its encoder's own.
Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]
VideoCodec = Literal["h264", "h265", "av1", "vp9"]
AudioCodec = Literal["aac", "opus", "mp3", "flac", "pcm"]
Fit = Literal["contain", "cover", "stretch"]

# The largest frame side we produce; the input limits (MAX_INPUT_DIMENSION) may be lower.
MAX_DIMENSION = 8192
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"

_BITRATE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([kKmM]?)$")
_MIN_BITRATE, _MAX_BITRATE = 8_000, 200_000_000


def bits_per_second(bitrate: str) -> int:
    """ "128k" → 128000, "2.5M" → 2500000, "800000" → 800000 (the value was validated by `Bitrate`)."""
    match = _BITRATE.match(bitrate)
    if match is None:
        raise ValueError(f"not a bitrate: {bitrate!r}")
    factor = {"": 1, "k": 1_000, "m": 1_000_000}[match[2].lower()]
    return int(float(match[1]) * factor)


def _bitrate(value: object) -> str:
    if isinstance(value, bool):
        raise ValueError("a bitrate is a number of bits per second or a string like '128k' or '2.5M'")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or _BITRATE.match(value.strip()) is None:
        raise ValueError(f"bitrate must be bits per second or a string like '128k' or '2.5M'; got {value!r}")
    value = value.strip()
    if not _MIN_BITRATE <= bits_per_second(value) <= _MAX_BITRATE:
        raise ValueError(f"bitrate must be between 8k and 200M; got {value!r}")
    return value


# Kept as the user wrote it ("128k"), which is also what ffmpeg reads; the pattern keeps it safe.
Bitrate = Annotated[str, BeforeValidator(_bitrate)]
Dimension = Annotated[int, Field(ge=16, le=MAX_DIMENSION)]


class Strict(BaseModel):
    """Unknown keys are errors, not silently ignored: a typo ("bitrat") must not pass unnoticed; and no
    coercion (`"start": false` or `"count": "3"` are refused, not read as 0 and 3)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Clip(Strict):
    start: float = Field(default=0.0, ge=0, le=86_400, description="Seconds from the source's start.")
    end: float | None = Field(default=None, gt=0, le=86_400, description="Seconds; omitted: to the end.")

    @model_validator(mode="after")
    def _end_after_start(self) -> Clip:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"clip.end ({self.end:g}) must be greater than clip.start ({self.start:g})")
        return self

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


class VideoSettings(Strict):
    codec: VideoCodec = "h264"
    crf: int | None = Field(default=None, ge=0, le=63, description="Constant quality (h264/h265: 0-51, av1/vp9: 0-63).")
    bitrate: Bitrate | None = Field(default=None, description="Target bitrate instead of crf, e.g. '2500k'.")
    maxrate: Bitrate | None = Field(default=None, description="Peak bitrate cap (with crf: capped quality).")
    bufsize: Bitrate | None = Field(default=None, description="Rate-control buffer; needs maxrate.")
    preset: Preset | None = Field(default=None, description="Encoder speed; omitted: the encoder's default.")
    profile: Literal["baseline", "main", "high"] | None = Field(default=None, description="h264 only.")
    level: str | None = Field(default=None, pattern=r"^[1-6](\.[0-2])?$", description="h264 only, e.g. '4.2'.")
    width: Dimension | None = None
    height: Dimension | None = None
    fit: Fit = Field(default="contain", description="With width and height both given: contain | cover | stretch.")
    upscale: bool = Field(default=False, description="Allow a frame larger than the source's.")
    fps: float | None = Field(default=None, gt=0, le=120)
    grayscale: bool = False
    hdr: Literal["tonemap", "keep"] = Field(
        default="tonemap",
        description='An HDR (PQ or HLG) source: "tonemap" makes SDR BT.709 (what every screen shows right); '
        '"keep" keeps it HDR, 10-bit BT.2020 with its mastering metadata (codec h265 or av1 only).',
    )
    target_vmaf: float | None = Field(
        default=None,
        ge=30,
        le=99,
        description="Instead of crf: the VMAF to aim at; the CRF is searched on samples of the source.",
    )
    max_probes: int | None = Field(
        default=None, ge=1, le=8, description="With target_vmaf: test encodes allowed (default 4)."
    )

    @model_validator(mode="after")
    def _coherent(self) -> VideoSettings:
        if self.crf is not None and self.bitrate is not None:
            raise ValueError("give video.crf (constant quality) or video.bitrate (target bitrate), not both")
        if self.target_vmaf is not None and (self.crf is not None or self.bitrate is not None):
            raise ValueError(
                "video.target_vmaf chooses the CRF itself: drop video.crf and video.bitrate, or drop target_vmaf"
            )
        if self.max_probes is not None and self.target_vmaf is None:
            raise ValueError("video.max_probes only applies with video.target_vmaf")
        if self.crf is not None and self.codec in ("h264", "h265") and self.crf > 51:
            raise ValueError(f"video.crf for {self.codec} is 0-51; got {self.crf}")
        if self.bufsize is not None and self.maxrate is None:
            raise ValueError("video.bufsize needs video.maxrate")
        if self.hdr == "keep" and self.codec not in ("h265", "av1"):
            raise ValueError(
                f"video.hdr keep needs a codec that carries HDR (h265 or av1); {self.codec} is 8-bit SDR here: "
                'set video.codec to "h265" or "av1", or drop hdr to get a tone-mapped SDR output'
            )
        if (self.profile is not None or self.level is not None) and self.codec != "h264":
            raise ValueError("video.profile and video.level apply to codec h264 only")
        return self


class AudioSettings(Strict):
    codec: AudioCodec | None = Field(default=None, description="Omitted: the container's usual codec.")
    bitrate: Bitrate | None = None
    channels: int | None = Field(default=None, ge=1, le=8)
    sample_rate: Literal[8000, 16000, 22050, 24000, 32000, 44100, 48000, 96000] | None = None
    loudness: float | None = Field(
        default=None, ge=-70, le=-5, description="Target integrated loudness in LUFS (two-pass EBU R128 loudnorm)."
    )
    true_peak: float = Field(default=-1.5, ge=-9, le=0, description="Ceiling in dBTP when loudness is set.")


def _exactly_false(value: object) -> object:
    if value is not False:  # Literal[False] alone would take 0, which equals False in Python
        raise ValueError("audio is an object of audio settings, or false for no audio track")
    return value


NoAudio = Annotated[Literal[False], BeforeValidator(_exactly_false)]

OutputName = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        description="Unique in the job; letters, digits, '-' and '_', at most 64; names the output's folder.",
    ),
]


_LANGUAGE_CODE = re.compile(r"^[a-z]{3}$")


def _language_codes(value: object) -> object:
    if value == "all":
        return value
    if not isinstance(value, list) or not value:
        raise ValueError(
            'a track selection is "all" or a non-empty list of ISO 639-2 language codes like ["eng", "fra"]'
        )
    for code in value:
        if not isinstance(code, str) or _LANGUAGE_CODE.match(code) is None:
            raise ValueError(
                f'language codes are three lowercase letters (ISO 639-2, as containers store them: "eng", "fra", '
                f'"deu"; "und" for tracks without one); got {code!r}'
            )
    if len(set(value)) != len(value):
        raise ValueError(f"list each language once; got {value!r}")
    return value


# Which of the source's audio or subtitle tracks an output keeps: every one, or those in these languages
# (in the source's order). ISO 639-2 bibliographic and terminology codes match each other (fre = fra).
TrackSelection = Annotated[
    Literal["all"] | Annotated[list[str], Field(max_length=32)],
    BeforeValidator(_language_codes),
]
