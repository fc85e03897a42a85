"""FFmpeg operations, public face (re-exports only; the code is in `mediaflow/media/`):
the seed methods' formats (`operations`) and their ffmpeg commands (`outputs.templates`: each method is
a built-in template), running ffmpeg with progress (`ffmpeg`), the input safety options and binaries
(`inputs`), and the errors.

    fmt = resolve_output_format(Method.COMPRESS, "mp4")
    source = Source(Path("in.mp4"), await probe(Path("in.mp4"), settings), ffmpeg_binary(settings))
    argv = method_argv(Method.COMPRESS, fmt.name, source, Path("out"))  # writes out/compress.mp4
    check(await run_ffmpeg(argv, log_path=Path("ffmpeg.log"), on_progress=print_progress))
"""

from mediaflow.media.errors import FfmpegError, FfmpegFailedError, InvalidFormatError, ProbeError
from mediaflow.media.ffmpeg import FfmpegResult, ProgressParser, ProgressUpdate, check, run_ffmpeg, summarize_stderr
from mediaflow.media.inputs import INPUT_FORMATS, INPUT_SAFETY_OPTIONS, ffmpeg_binary, ffprobe_binary, file_url
from mediaflow.media.operations import (
    OutputFormat,
    allowed_formats,
    default_format,
    mime_type_for,
    resolve_output_format,
)
from mediaflow.media.outputs import Source, method_argv

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
    "Source",
    "allowed_formats",
    "check",
    "default_format",
    "ffmpeg_binary",
    "ffprobe_binary",
    "file_url",
    "method_argv",
    "mime_type_for",
    "resolve_output_format",
    "run_ffmpeg",
    "summarize_stderr",
]
