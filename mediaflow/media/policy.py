"""What a worker accepts as input, decided on the probed facts before any encoding starts.

The file is untrusted: a header can claim 100000x100000 pixels or a ten-day duration, a playlist can
point ffmpeg at other files. Each check fails the job with a reason the user can act on.
"""

from __future__ import annotations

from mediaflow.jobs.model import Method
from mediaflow.media.errors import ProbeError
from mediaflow.media.probe import MediaInfo, check_safe_input
from mediaflow.settings_groups import InputLimits


class InputRejectedError(ProbeError):
    """The input is readable but not acceptable for this job."""


def check_input(info: MediaInfo, method: Method | None, limits: InputLimits) -> None:
    """`method` None: a multi-output job, whose outputs check the streams they need themselves."""
    check_safe_input(info)
    if method is Method.EXTRACT_AUDIO:
        if info.audio is None:
            raise InputRejectedError("the source has no audio stream, so there is no audio to extract")
    elif method is not None and info.video is None:
        raise InputRejectedError(f"the source has no video stream; {method.value} needs a video input")
    if info.stream_count > limits.max_streams:
        raise InputRejectedError(
            f"the source has {info.stream_count} streams; at most {limits.max_streams} are accepted"
        )
    if info.duration is not None and info.duration > limits.max_duration_s:
        raise InputRejectedError(
            f"the source lasts {info.duration:.0f} s; at most {limits.max_duration_s:.0f} s is accepted "
            "(MAX_INPUT_DURATION_S)"
        )
    if info.video is not None:
        width, height = info.video.width, info.video.height
        if width <= 0 or height <= 0:
            raise InputRejectedError("the source's video stream has no valid frame size")
        if width * height > limits.max_pixels or max(width, height) > limits.max_dimension:
            raise InputRejectedError(
                f"the source's frames are {width}x{height}; at most {limits.max_dimension} pixels a side "
                f"and {limits.max_pixels} pixels a frame are accepted (MAX_INPUT_DIMENSION, MAX_INPUT_PIXELS)"
            )


def check_output(output: MediaInfo, source: MediaInfo) -> None:
    """ffmpeg can exit 0 on a damaged input (a truncated faststart MP4 decodes until the data ends):
    an output much shorter than the probed input means the input was incomplete."""
    too_short = output.duration is not None and output.duration < 0.9 * (source.duration or 0)
    if source.duration and source.duration > 1 and too_short:
        raise InputRejectedError(
            f"the source is damaged or incomplete: only {output.duration:.1f} s of its "
            f"{source.duration:.1f} s could be decoded"
        )
