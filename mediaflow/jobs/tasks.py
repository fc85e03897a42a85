"""Tasks of a spread job (jobs/fanout.py): what a task record's `task` JSON holds, and how a job shows them.

Kinds: `chunk` (one keyframe-aligned piece of a video output) and `audio` (that output's audio, once),
`rendition` (one rendition of an HLS ladder), `output` (one whole output). Each is a task record
(`RecordKind.TASK`, with `parent_id` naming its job; see ARCHITECTURE.md, "Tasks"), claimed, leased,
reaped and retried alone, and never shown or counted as a job. The spec carries
everything a worker needs: the storage keys of its input and result, a chunk's frame range, and either
the output's ffmpeg options as the splitting worker built them from the validated output spec, or
(output, rendition) that validated spec itself — never raw user text.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mediaflow.jobs.model import Job, JobStatus, RecordKind, Timestamp
from mediaflow.media.chunking import Chunk


class TaskSpec(BaseModel):
    kind: Literal["chunk", "audio", "rendition", "output"]
    total: int = Field(description="tasks the job was split into: a partial set (a crash mid-split) is redone")
    output: str = ""  # the name of the output the task works on
    result: str  # storage key of the task's result: the encoded piece, or (output, rendition) its file list
    options: list[str] = Field(default_factory=list)  # chunk/audio: the output's video or audio encoder options
    index: int = 0  # chunk order in the join; a rendition's place in the ladder
    piece: str | None = None  # chunk: storage key of the split piece to encode
    first_frame: int = 0
    start: float = 0.0
    end: float | None = None
    trim_start: float = 0.0  # chunk: a clip starting inside it (chunk-local seconds)
    trim_end: float | None = None  # chunk: a clip ending inside it
    clip_start: float = 0.0  # audio: the clip's range in the source
    clip_end: float | None = None
    muxer: str = "mp4"  # audio: the final container's muxer, so the join can copy the stream as it is
    spec: str | None = None  # output, rendition: the validated output spec (JSON) to make

    def chunk(self) -> Chunk:
        return Chunk(self.index, self.first_frame, self.start, self.end, self.trim_start, self.trim_end)

    @classmethod
    def of_chunk(
        cls, chunk: Chunk, *, total: int, output: str, piece: str, result: str, options: list[str]
    ) -> TaskSpec:
        return cls(
            kind="chunk",
            total=total,
            output=output,
            result=result,
            options=options,
            index=chunk.index,
            piece=piece,
            first_frame=chunk.first_frame,
            start=chunk.start,
            end=chunk.end,
            trim_start=chunk.trim_start,
            trim_end=chunk.trim_end,
        )


def task_spec(task: Job) -> TaskSpec:
    return TaskSpec.model_validate_json(task.task or "{}")


def new_task(parent: Job, spec: TaskSpec) -> Job:
    """A queued task record of `parent` (same source and owner, so the audio task can fetch the source)."""
    return Job(
        record_kind=RecordKind.TASK,
        source=parent.source,
        owner=parent.owner,
        parent_id=parent.job_id,
        task=spec.model_dump_json(),
        traceparent=parent.traceparent,
        destination=parent.destination,  # an output or rendition task stores its files where the job's go
    )


def _done(task: Job) -> float:
    """0-100: a finished task counts whole, a running one by the progress its worker last wrote."""
    if task.status is JobStatus.COMPLETED:
        return 100.0
    return float(task.progress or 0) if task.status is JobStatus.PROCESSING else 0.0


def tasks_progress(tasks: list[Job]) -> int:
    """The job's progress while its tasks run: the tasks' mean, below 100 until the job is put together."""
    return min(99, int(sum(_done(t) for t in tasks) / max(1, len(tasks))))


class TaskView(BaseModel):
    """One task of a job, as GET /jobs/{id} shows it: which worker did what, and when."""

    task_id: str
    kind: str
    output: str = Field(description="the output the task works on")
    index: int
    status: JobStatus
    worker_id: str | None
    attempts: int
    started_at: Timestamp | None
    completed_at: Timestamp | None
    error: str | None

    @classmethod
    def of(cls, task: Job) -> TaskView:
        spec = task_spec(task)
        # a finished task's record keeps the worker that finished it (lifecycle.complete writes it)
        return cls(
            task_id=task.job_id,
            kind=spec.kind,
            output=spec.output,
            index=spec.index,
            status=task.status,
            worker_id=task.worker_id,
            attempts=task.attempts,
            started_at=task.started_at,
            completed_at=task.completed_at,
            error=task.error,
        )


def task_views(tasks: list[Job]) -> list[TaskView]:
    views = [TaskView.of(t) for t in tasks]
    order = {"chunk": 0, "audio": 1, "rendition": 2, "output": 3}
    return sorted(views, key=lambda v: (v.output, order.get(v.kind, 9), v.index))
