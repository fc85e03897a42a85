"""The ffmpeg operations as data: method → argv, output container, MIME type.

`build_argv` is a pure function so the presets can be pinned by golden-argv tests. Running ffmpeg is
in `ffmpeg.py`, probing in `probe.py`, the input safety options every run uses in `inputs.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mediaflow.jobs.model import Method
from mediaflow.media.errors import InvalidFormatError
from mediaflow.media.inputs import INPUT_SAFETY_OPTIONS, file_url

# --- output formats ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputFormat:
    name: str
    extension: str  # without the dot: "mp4"
    mime_type: str


OUTPUT_FORMATS: dict[str, OutputFormat] = {
    f.name: f
    for f in (
        OutputFormat("mp4", "mp4", "video/mp4"),
        OutputFormat("mov", "mov", "video/quicktime"),
        OutputFormat("mkv", "mkv", "video/x-matroska"),
        OutputFormat("webm", "webm", "video/webm"),
        OutputFormat("mp3", "mp3", "audio/mpeg"),
    )
}
# Passed explicitly with -f so the muxer never depends on the output file name.
_MUXERS = {"mp4": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm", "mp3": "mp3"}
_VIDEO_FORMATS = ("mp4", "mov", "mkv", "webm")
_AUDIO_FORMATS = ("mp3",)


def mime_type_for(filename: str) -> str | None:
    """The MIME type of one of our output files, by its extension (None for anything else)."""
    _, dot, extension = filename.rpartition(".")
    fmt = OUTPUT_FORMATS.get(extension.lower()) if dot else None
    return fmt.mime_type if fmt else None


def allowed_formats(method: Method) -> tuple[str, ...]:
    return _AUDIO_FORMATS if Method(method) is Method.EXTRACT_AUDIO else _VIDEO_FORMATS


def default_format(method: Method) -> str:
    return allowed_formats(method)[0]


def resolve_output_format(method: Method, requested: str | None) -> OutputFormat:
    """The output format for a request: None or blank → the method's default; case and a leading dot ignored."""
    method = Method(method)
    allowed = allowed_formats(method)
    if requested is None or not requested.strip():
        return OUTPUT_FORMATS[allowed[0]]
    name = requested.strip().lower().removeprefix(".")
    if name not in allowed:
        raise _not_available(method, requested)
    return OUTPUT_FORMATS[name]


def _not_available(method: Method, requested: str) -> InvalidFormatError:
    allowed = ", ".join(allowed_formats(method))
    return InvalidFormatError(
        f"output_format {requested!r} is not available for {method.value}; choose one of: {allowed}"
    )


# --- argv ------------------------------------------------------------------------------------------
GLOBAL_OPTIONS = ("-hide_banner", "-nostdin", "-y", "-nostats", "-progress", "pipe:1", "-loglevel", "info")

# "0:V" (capital) skips attached pictures such as cover art; "?" lets a source without audio through.
_MAP_VIDEO_AUDIO = ["-map", "0:V:0", "-map", "0:a:0?"]


def _x264(crf: int) -> list[str]:
    return ["-c:v", "libx264", "-crf", str(crf), "-preset", "medium", "-pix_fmt", "yuv420p"]


def _vp9(crf: int) -> list[str]:
    # WebM cannot hold H.264/AAC. libvpx's defaults (cpu-used 0/1, no row-mt) are ~3x slower than
    # these for about the same size (measured: 5 s of 720p, 12.6 s → 4.1 s on 2 cores).
    return [
        "-c:v",
        "libvpx-vp9",
        "-crf",
        str(crf),
        "-b:v",
        "0",
        "-deadline",
        "good",
        "-cpu-used",
        "4",
        "-row-mt",
        "1",
        "-pix_fmt",
        "yuv420p",
    ]


def _audio(fmt: str, bitrate: str) -> list[str]:
    return ["-c:a", "libopus" if fmt == "webm" else "aac", "-b:a", bitrate]


def _method_options(method: Method, fmt: str) -> list[str]:
    webm = fmt == "webm"
    if method is Method.EXTRACT_AUDIO:
        return ["-map", "0:a:0", "-vn", "-c:a", "libmp3lame", "-b:a", "192k"]
    if method is Method.COMPRESS:
        return [*_MAP_VIDEO_AUDIO, *(_vp9(36) if webm else _x264(28)), *_audio(fmt, "128k")]
    if method is Method.RESIZE:
        # The README's preset is exactly 1280x720: sources of another aspect ratio are stretched.
        return [*_MAP_VIDEO_AUDIO, "-vf", "scale=1280:720", *(_vp9(31) if webm else _x264(23)), *_audio(fmt, "128k")]
    if method is Method.BLACK_AND_WHITE:
        return [*_MAP_VIDEO_AUDIO, "-vf", "hue=s=0", *(_vp9(31) if webm else _x264(23)), *_audio(fmt, "128k")]
    if method is Method.CONVERT_FORMAT:
        if webm:
            video = _vp9(31)
        else:
            video = ["-c:v", "libx264", "-profile:v", "high", "-level:v", "4.2", "-pix_fmt", "yuv420p"]
        # moov atom first, so browsers start playing before the whole file has arrived
        faststart = ["-movflags", "+faststart"] if fmt in ("mp4", "mov") else []
        return [*_MAP_VIDEO_AUDIO, *video, *faststart, *_audio(fmt, "192k")]
    raise ValueError(f"unknown method {method!r}")


def build_argv(
    ffmpeg: str,
    method: Method,
    input_path: Path,
    output_path: Path,
    fmt: OutputFormat,
    *,
    threads: int = 0,
    input_options: Sequence[str] = (),
) -> list[str]:
    """`input_options` go just before `-i` (the decode limits of limits.py)."""
    method = Method(method)
    if fmt.name not in allowed_formats(method):
        raise _not_available(method, fmt.name)
    argv = [ffmpeg, *GLOBAL_OPTIONS, *INPUT_SAFETY_OPTIONS, *input_options, "-i", file_url(input_path)]
    argv += _method_options(method, fmt.name)
    if threads > 0:
        argv += ["-threads", str(threads)]
    argv += ["-f", _MUXERS[fmt.name], file_url(output_path)]
    return argv
