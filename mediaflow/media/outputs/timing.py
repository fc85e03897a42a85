"""Frame timing: a variable frame rate is kept on purpose, or made constant because the output asked.

By default ffmpeg encodes at one frame rate guessed from the first frames it sees (the demuxer's
r_frame_rate): a screen capture at 30, then 10, then 60 fps is encoded on a 1/30 s grid, and two
60 fps frames that land on one grid point make one of them disappear (a third of the frames, measured
on such a source). For a source probed as variable, the encoder keeps the filter graph's own time
base instead (`-enc_time_base filter`, fine enough for every frame) and passes frames through at their
own times (`-fps_mode vfr`, which drops only exact repeats). An output with `video.fps` gets the `fps`
filter, which makes the rate constant by design; then nothing here is needed.
"""

from __future__ import annotations

from mediaflow.media.outputs.plan import number
from mediaflow.media.probe import MediaInfo

KEEP_VARIABLE_RATE = ["-fps_mode", "vfr", "-enc_time_base", "filter"]


def timing_args(info: MediaInfo, fps: float | None) -> list[str]:
    """Encoder options that keep every frame of a variable-frame-rate source ([] for a constant one)."""
    return list(KEEP_VARIABLE_RATE) if info.variable_frame_rate and fps is None else []


def timing_notes(info: MediaInfo, fps: float | None) -> list[str]:
    if not info.variable_frame_rate:
        return []
    if fps is None:
        return ["variable frame rate kept: every frame at its own time"]
    return [f"variable frame rate made constant at {number(fps)} fps, as video.fps asks"]
