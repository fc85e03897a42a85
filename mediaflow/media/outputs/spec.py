"""The outputs of a job, as the client writes them in `POST /jobs` (see the README's "Outputs").

One pydantic model per output `type`, told apart by that field. Validation here is everything that
can be decided without the source: names, ranges, which container holds which codec, counts. What
needs the probed source (no audio stream, an offset past the end) fails that output when it runs.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, TypeAdapter, model_validator

from mediaflow.media.outputs.params import (
    MAX_DIMENSION,
    AudioSettings,
    Bitrate,
    Clip,
    Dimension,
    NoAudio,
    OutputName,
    Preset,
    Strict,
    TrackSelection,
    VideoSettings,
)

MAX_OUTPUTS = 16
MAX_RENDITIONS = 8

# Which codecs each video container can hold (what ffmpeg's muxer and common players accept).
VIDEO_CONTAINERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "mp4": (("h264", "h265", "av1", "vp9"), ("aac", "mp3", "opus")),
    "mov": (("h264", "h265"), ("aac", "mp3")),
    "mkv": (("h264", "h265", "av1", "vp9"), ("aac", "mp3", "opus")),
    "webm": (("av1", "vp9"), ("opus",)),
}
# An audio output's format decides its codec.
QualityMetric = Literal["vmaf", "psnr", "ssim"]
# How a video or HLS output may be spread over workers (see jobs/fanout.py): true, false or "auto".
Parallel = Literal["auto"] | bool
AUDIO_FORMAT_CODECS = {"mp3": "mp3", "m4a": "aac", "opus": "opus", "flac": "flac", "wav": "pcm"}


_AUDIO_TRACKS = (
    '"all": every audio track of the source, with its language; or a list of ISO 639-2 codes (["eng", "fra"]) '
    "to keep only those."
)
_SUBTITLE_TRACKS = (
    '"all": every text subtitle track of the source (bitmap tracks are skipped with a note); or a list of '
    "ISO 639-2 codes."
)


def default_audio_codec(fmt: str) -> str:
    return AUDIO_FORMAT_CODECS.get(fmt) or ("opus" if fmt == "webm" else "aac")


class VideoOutput(Strict):
    type: Literal["video"]
    name: OutputName
    format: Literal["mp4", "mov", "mkv", "webm"] = "mp4"
    video: VideoSettings = VideoSettings()
    audio: AudioSettings | NoAudio = Field(default=AudioSettings(), description="false: no audio track.")
    clip: Clip | None = None
    audio_tracks: TrackSelection = Field(default="all", description=_AUDIO_TRACKS)
    subtitle_tracks: TrackSelection = Field(default="all", description=_SUBTITLE_TRACKS)
    faststart: bool = Field(
        default=True, description="mp4/mov: index first, so playback starts before the end arrives."
    )
    quality: Annotated[list[QualityMetric], Field(min_length=1, max_length=3)] | None = Field(
        default=None,
        description="Measure the output against the source (vmaf, psnr, ssim): pooled figures on the output, "
        "per-frame scores in <name>.quality.csv.",
    )
    parallel: Parallel = Field(
        default="auto",
        description="Split the video on keyframes into chunks that any worker encodes, then join them. "
        '"auto": when the source is at least CHUNK_MIN_SOURCE_S long and more than one worker is alive.',
    )

    @model_validator(mode="after")
    def _distinct_metrics(self) -> VideoOutput:
        if self.quality is not None and len(set(self.quality)) != len(self.quality):
            raise ValueError(f"quality lists each metric once; got {list(self.quality)!r}")
        return self

    @model_validator(mode="after")
    def _container_holds_codecs(self) -> VideoOutput:
        videos, audios = VIDEO_CONTAINERS[self.format]
        if self.video.codec not in videos:
            raise ValueError(
                f"a {self.format} file cannot hold {self.video.codec} video; with {self.format} use "
                f"{' or '.join(videos)}, or pick another format"
            )
        if self.audio is not False and self.audio.codec is not None and self.audio.codec not in audios:
            raise ValueError(
                f"a {self.format} file cannot hold {self.audio.codec} audio; with {self.format} use "
                f"{' or '.join(audios)}"
            )
        return self


class AudioOutput(Strict):
    type: Literal["audio"]
    name: OutputName
    format: Literal["mp3", "m4a", "opus", "flac", "wav"] = "mp3"
    audio: AudioSettings = AudioSettings()
    clip: Clip | None = None

    @model_validator(mode="after")
    def _format_decides_codec(self) -> AudioOutput:
        codec = AUDIO_FORMAT_CODECS[self.format]
        if self.audio.codec is not None and self.audio.codec != codec:
            raise ValueError(f"format {self.format} holds {codec} audio; drop audio.codec or set it to {codec!r}")
        if self.audio.bitrate is not None and codec in ("flac", "pcm"):
            raise ValueError(f"format {self.format} is lossless: it takes no audio.bitrate")
        return self


class Rendition(Strict):
    height: Dimension
    bitrate: Bitrate = Field(description="Video bitrate of this rendition, e.g. '2800k'.")


class StreamVideo(Strict):
    codec: Literal["h264", "h265"] = Field(
        default="h264", description="h265: HEVC in fMP4 segments (HLS) or representations (DASH)."
    )
    preset: Preset | None = None
    fps: float | None = Field(default=None, gt=0, le=120)
    hdr: Literal["tonemap", "keep"] = Field(
        default="tonemap",
        description='An HDR source: "tonemap" makes every rendition SDR BT.709; "keep" keeps HDR (10-bit, codec '
        "h265 only), with VIDEO-RANGE in the HLS master playlist.",
    )

    @model_validator(mode="after")
    def _hdr_needs_hevc(self) -> StreamVideo:
        if self.hdr == "keep" and self.codec != "h265":
            raise ValueError(
                "video.hdr keep needs video.codec h265 in an HLS or DASH ladder (H.264 is 8-bit SDR here); "
                "set the codec, or drop hdr to get tone-mapped SDR renditions"
            )
        return self


class StreamAudio(Strict):
    codec: Literal["aac"] = "aac"
    bitrate: Bitrate = "128k"
    channels: int = Field(default=2, ge=1, le=2)


class _StreamOutput(Strict):
    name: OutputName
    renditions: Literal["auto"] | Annotated[list[Rendition], Field(min_length=1, max_length=MAX_RENDITIONS)] = Field(
        default="auto",
        description='"auto": a ladder from the source (never above its height), or a list of {height, bitrate}.',
    )
    segment_seconds: float = Field(default=4.0, ge=1, le=30)
    video: StreamVideo = StreamVideo()
    audio: StreamAudio | NoAudio = StreamAudio()
    clip: Clip | None = None
    audio_tracks: TrackSelection = Field(default="all", description=_AUDIO_TRACKS)
    subtitle_tracks: TrackSelection = Field(default="all", description=_SUBTITLE_TRACKS)

    @model_validator(mode="after")
    def _distinct_heights(self) -> _StreamOutput:
        if self.renditions != "auto":
            heights = [r.height for r in self.renditions]
            repeated = sorted(h for h, n in Counter(heights).items() if n > 1)
            if repeated:
                raise ValueError(f"each rendition needs its own height; {repeated} appear more than once")
        return self


class HlsOutput(_StreamOutput):
    type: Literal["hls"]
    parallel: Parallel = Field(
        default="auto",
        description="Encode each rendition as its own task, so several workers make the ladder at once. "
        '"auto": when the source is at least CHUNK_MIN_SOURCE_S long and more than one worker is alive.',
    )


class DashOutput(_StreamOutput):
    type: Literal["dash"]


def _offset(value: object) -> object:
    if isinstance(value, str):
        text = value.strip()
        try:
            percent = float(text.removesuffix("%"))
        except ValueError:
            percent = -1.0
        if not text.endswith("%") or not 0 <= percent <= 100:
            raise ValueError(
                f"an offset is seconds (a number) or a percentage of the duration like '50%'; got {value!r}"
            )
        return text
    return value


Offset = Annotated[Annotated[float, Field(ge=0, le=86400)] | str, AfterValidator(_offset)]
ImageFormat = Literal["jpg", "png", "webp"]


class ThumbnailsOutput(Strict):
    type: Literal["thumbnails"]
    name: OutputName
    count: int | None = Field(default=None, ge=1, le=50, description="Frames spread evenly over the source.")
    offsets: Annotated[list[Offset], Field(min_length=1, max_length=50)] | None = Field(
        default=None, description='Times to take frames at: seconds, or "50%" of the duration.'
    )
    width: Dimension | None = None
    height: Dimension | None = None
    format: ImageFormat = "jpg"

    @model_validator(mode="after")
    def _count_or_offsets(self) -> ThumbnailsOutput:
        if self.count is not None and self.offsets is not None:
            raise ValueError("give count (evenly spread) or offsets (chosen times), not both")
        return self


class StoryboardOutput(Strict):
    type: Literal["storyboard"]
    name: OutputName
    interval_seconds: float = Field(default=5.0, ge=0.5, le=600)
    columns: int = Field(default=5, ge=1, le=20)
    rows: int | None = Field(default=None, ge=1, le=20, description="Rows per sheet; omitted: as needed, up to 20.")
    width: int = Field(default=160, ge=32, le=640, description="Width of one tile.")
    format: ImageFormat = "jpg"


class AnimationOutput(Strict):
    type: Literal["animation"]
    name: OutputName
    format: Literal["gif", "webp"] = "gif"
    start: float = Field(default=0.0, ge=0, le=86_400)
    duration: float = Field(default=3.0, gt=0, le=30)
    width: int = Field(default=480, ge=16, le=1920)
    fps: float = Field(default=12.0, gt=0, le=30)


class WaveformOutput(Strict):
    type: Literal["waveform"]
    name: OutputName
    width: int = Field(default=800, ge=16, le=MAX_DIMENSION)
    height: int = Field(default=160, ge=16, le=2048)
    color: str = Field(default="#3b82f6", pattern=r"^#[0-9a-fA-F]{6}$", description="#RRGGBB")


OutputSpec = Annotated[
    VideoOutput
    | AudioOutput
    | HlsOutput
    | DashOutput
    | ThumbnailsOutput
    | StoryboardOutput
    | AnimationOutput
    | WaveformOutput,
    Field(discriminator="type"),
]
OUTPUT_TYPES = ("video", "audio", "hls", "dash", "thumbnails", "storyboard", "animation", "waveform")


def _quality_on_video_only(outputs: object) -> object:
    """`quality` on another type would only say "extra inputs are not permitted": say what works instead."""
    for item in outputs if isinstance(outputs, list) else []:
        if isinstance(item, dict) and "quality" in item and item.get("type") != "video":
            raise ValueError(
                f"quality is measured on video outputs only; output {item.get('name')!r} is of type {item.get('type')!r}"
            )
    return outputs


def _unique_names(outputs: list) -> list:
    repeated = sorted(name for name, n in Counter(o.name for o in outputs).items() if n > 1)
    if repeated:
        raise ValueError(f"output names must be unique; {', '.join(repeated)} used more than once")
    return outputs


OutputList = Annotated[
    list[OutputSpec],
    Field(min_length=1, max_length=MAX_OUTPUTS, description=f"1 to {MAX_OUTPUTS} outputs with distinct names."),
    BeforeValidator(_quality_on_video_only),
    AfterValidator(_unique_names),
]
_OUTPUT_LIST = TypeAdapter(OutputList)


def parse_outputs(data: object) -> list[OutputSpec]:
    """Validate a list of output specs (raises pydantic.ValidationError)."""
    return _OUTPUT_LIST.validate_python(data)


def dimension_problems(outputs: list[OutputSpec], max_dimension: int) -> list[str]:
    """Frame sides past the server's MAX_INPUT_DIMENSION (the same limit applies to what we make)."""
    problems = []
    for output in outputs:
        sizes = {
            "width": getattr(output, "width", None) or getattr(getattr(output, "video", None), "width", None),
            "height": getattr(output, "height", None) or getattr(getattr(output, "video", None), "height", None),
        }
        renditions = getattr(output, "renditions", "auto")
        if isinstance(renditions, list):
            sizes["height"] = max(r.height for r in renditions)
        for side, value in sizes.items():
            if value is not None and value > max_dimension:
                problems.append(
                    f"output {output.name!r}: {side} {value} is above this server's limit of {max_dimension}"
                )
    return problems
