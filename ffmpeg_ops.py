"""FFmpeg operations, public face (re-exports only; the code is in `mediaflow/media/`):
the presets as argv (`operations`), running ffmpeg with progress (`ffmpeg`), the input safety options
and binaries (`inputs`), and the errors.

    fmt = resolve_output_format(Method.COMPRESS, "mp4")
    argv = build_argv(ffmpeg_binary(settings), Method.COMPRESS, Path("in.mp4"), Path("out.mp4"), fmt)
    check(await run_ffmpeg(argv, log_path=Path("ffmpeg.log"), on_progress=print_progress))
"""

from mediaflow.media.errors import FfmpegError, FfmpegFailedError, InvalidFormatError, ProbeError
from mediaflow.media.ffmpeg import FfmpegResult, ProgressParser, ProgressUpdate, check, run_ffmpeg, summarize_stderr
from mediaflow.media.inputs import INPUT_FORMATS, INPUT_SAFETY_OPTIONS, ffmpeg_binary, ffprobe_binary, file_url
from mediaflow.media.operations import (
    OutputFormat,
    allowed_formats,
    build_argv,
    default_format,
    mime_type_for,
    resolve_output_format,
)

__all__ = [
    "FfmpegError",
    "FfmpegFailedError",
    "FfmpegResult",
    "INPUT_FORMATS",
    "INPUT_SAFETY_OPTIONS",
    "InvalidFormatError",
    "OutputFormat",
    "ProbeError",
    "ProgressParser",
    "ProgressUpdate",
    "allowed_formats",
    "build_argv",
    "check",
    "default_format",
    "ffmpeg_binary",
    "ffprobe_binary",
    "file_url",
    "mime_type_for",
    "resolve_output_format",
    "run_ffmpeg",
    "summarize_stderr",
]
