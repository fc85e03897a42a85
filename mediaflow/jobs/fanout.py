"""Whether a job's outputs are spread over workers as tasks, and how each output is split.

Spreading costs a few store writes and a fetch of the source per task, and pays off when several
workers can take the pieces at once. So a job is split when one of its video or HLS outputs asks for
it (`"parallel": true`), or leaves it to us (`"auto"`, the default) and the job is worth it: the part
of the source it encodes is at least CHUNK_MIN_SOURCE_S long and more than one worker slot is alive
(the presence registry, store/workers.py). A split job becomes:

- `chunks` — a video output encoded in keyframe-aligned chunk tasks plus one audio task, joined at the end;
- `renditions` — an HLS output whose renditions are one task each (the master playlist is written at the end);
- `whole` — any other output (or one that does not ask to be split): one task makes it, as one worker would.

This module decides (pure: the probed duration and the live slots come in) and sums the tasks'
progress up per output while they run; worker/ does the work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from mediaflow.jobs.model import Job
from mediaflow.jobs.outputs import decode_states, encode_states
from mediaflow.jobs.tasks import task_spec, tasks_progress
from mediaflow.media.outputs.ladder import ladder_for
from mediaflow.media.outputs.spec import HlsOutput, OutputSpec, VideoOutput
from mediaflow.media.probe import MediaInfo

Split = Literal["chunks", "renditions", "whole"]


@dataclass(frozen=True)
class FanOut:
    splits: dict[str, Split]  # output name → how it is split
    reason: str  # why the job is spread, for the log and the user

    def of(self, name: str) -> Split:
        return self.splits[name]


def encoded_seconds(output: OutputSpec, info: MediaInfo) -> float:
    """Seconds of source the output encodes (its clip, or the whole source); 0 when unknown."""
    total = info.duration or 0.0
    clip = getattr(output, "clip", None)
    if clip is None:
        return total
    end = total if clip.end is None else min(clip.end, total or clip.end)
    return max(0.0, end - clip.start)


def _wants_split(output: OutputSpec, info: MediaInfo, live_slots: int, min_source_s: float) -> tuple[bool, str]:
    choice = getattr(output, "parallel", False)
    if choice is True:
        return True, f"output {output.name!r} asks for parallel: true"
    if choice == "auto" and live_slots > 1 and encoded_seconds(output, info) >= min_source_s:
        return (
            True,
            f"output {output.name!r}: {encoded_seconds(output, info):.0f} s of source and {live_slots} worker slots alive",
        )
    return False, ""


def plan_fanout(
    outputs: Sequence[OutputSpec], info: MediaInfo, *, live_slots: int, min_source_s: float
) -> FanOut | None:
    """How to spread this job, or None to run it whole on the worker that claimed it."""
    if info.video is None:
        return None  # nothing here is worth spreading: audio-only work is fast
    splits: dict[str, Split] = {}
    reasons = []
    for output in outputs:
        wanted, why = _wants_split(output, info, live_slots, min_source_s)
        splits[output.name] = "whole"
        if not wanted:
            continue
        if isinstance(output, VideoOutput):
            splits[output.name] = "chunks"
            reasons.append(why)
        elif isinstance(output, HlsOutput):
            _, rungs, _ = ladder_for(output, info.video)  # the rungs the builder will make: display size
            # rendition tasks each make a one-variant ladder with its audio inside: several audio tracks or
            # subtitles (renditions of their own, made once) keep the ladder whole
            if len(rungs) > 1 and len(info.tracks.audio) <= 1 and not info.tracks.subtitles:
                splits[output.name] = "renditions"
                reasons.append(why)
    if not reasons:
        return None
    return FanOut(splits, "; ".join(reasons))


def outputs_progress(states_json: str | None, tasks: list[Job]) -> str | None:
    """The job's per-output states with each spread output's progress from its tasks (None: no states)."""
    states = decode_states(states_json)
    if not states:
        return None
    by_output: dict[str, list[Job]] = {}
    for task in tasks:
        by_output.setdefault(task_spec(task).output, []).append(task)
    for state in states:
        mine = by_output.get(state.name)
        if mine and state.status in ("queued", "processing"):
            state.status, state.progress = "processing", tasks_progress(mine)
    return encode_states(states)
