"""Checking a joined output against its source: frame count, duration, A/V durations, timestamp order.

The last step of chunked encoding (chunking.py): a join that does not match the source frame for frame
is never published; the caller encodes the output in one piece instead and says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mediaflow.media.timeline import Timeline, read_timeline

AV_TOLERANCE_S = 0.040  # audio and video durations of the joined output may differ this much


@dataclass
class JoinCheck:
    problems: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify_join(
    output: Path, source: Timeline, *, clip_start: float = 0.0, clip_end: float | None = None, audio: bool = True
) -> JoinCheck:
    """Check the joined output against the source: frames, duration, A/V durations, timestamp order."""
    result = JoinCheck()
    joined = await read_timeline(output)
    video, source_video = joined.video, source.video
    if video is None or source_video is None:
        result.problems.append("the joined output has no video")
        return result
    expected_frames = source_video.frames_between(clip_start, clip_end)
    length = source_video.end - source_video.origin
    expected_duration = (min(clip_end, length) if clip_end is not None else length) - clip_start
    frame = video.frame_duration or source_video.frame_duration or 0.0
    result.figures.update(
        frames=video.frames,
        expected_frames=expected_frames,
        duration=round(video.duration, 4),
        expected_duration=round(expected_duration, 4),
    )
    if video.frames != expected_frames:
        result.problems.append(f"{video.frames} frames instead of the source's {expected_frames}")
    if abs(video.duration - expected_duration) > frame + 1e-3:
        result.problems.append(f"video lasts {video.duration:.3f} s instead of {expected_duration:.3f} s")
    if not (video.dts_monotonic and video.pts_unique):
        result.problems.append("video timestamps go backwards or repeat")
    if audio:
        if joined.audio is None:
            result.problems.append("the joined output has no audio")
        else:
            # from time 0: a negative start is encoder priming (AAC's 1024 samples) the player never shows
            offset = (joined.audio.end - max(joined.audio.start, 0.0)) - (video.end - max(video.start, 0.0))
            result.figures["av_difference"] = round(offset, 4)
            if abs(offset) > AV_TOLERANCE_S:
                result.problems.append(f"audio and video durations differ by {offset * 1000:.0f} ms")
            if not joined.audio.dts_monotonic:
                result.problems.append("audio timestamps go backwards")
    return result
