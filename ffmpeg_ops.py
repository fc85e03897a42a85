"""FFmpeg operations, public face (re-exports only; the code is in `mediaflow/media/`).

    argv = build_argv(ffmpeg_binary(settings), Method.COMPRESS, Path("in.mp4"), Path("out.mp4"), fmt)
    result = await run_ffmpeg(argv, duration_s, on_progress)
"""

from mediaflow.media.operations import FfmpegError, FfmpegFailedError, build_argv, ffmpeg_binary, run_ffmpeg

__all__ = ["FfmpegError", "FfmpegFailedError", "build_argv", "ffmpeg_binary", "run_ffmpeg"]
