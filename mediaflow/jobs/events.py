"""Job events: what just happened to a job, told to whoever listens in this process (webhooks, metrics).

`lifecycle.py` emits an event when, and only when, a status change was actually applied by the store;
a zombie worker whose conditional update is refused emits nothing. The worker adds `job.progress`
milestones. Listeners are plain callables that must return quickly: anything slow (an HTTP delivery)
is scheduled as a task by the listener itself.

Events are process-local: the process that made the change tells its listeners. A job canceled through
the API is announced by the API process; a job completed by `python worker.py` by that worker.

The bus also carries one piece of knowledge the other way: whether (and how) a final event must be
kept in the job's webhook outbox. The webhook dispatcher, which knows the settings, registers
`keep_outbox`; lifecycle asks `outbox_entry` and writes the entry in the same update that makes the
job final, so lifecycle never reads settings and a crash right after the change cannot lose the event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from mediaflow.jobs.model import Job, JobStatus, utcnow
from mediaflow.logs import get_logger

log = get_logger("events")


class EventType(StrEnum):
    STARTED = "job.started"  # claimed by a worker (queued -> processing)
    PROGRESS = "job.progress"  # crossed a progress milestone (25, 50, 75 %)
    COMPLETED = "job.completed"
    FAILED = "job.failed"
    CANCELED = "job.canceled"
    REQUEUED = "job.requeued"  # released or abandoned by its worker, back in the queue
    RETRIED = "job.retried"  # a failed or canceled job queued again by request


EVENT_FOR_STATUS = {
    JobStatus.PROCESSING: EventType.STARTED,
    JobStatus.COMPLETED: EventType.COMPLETED,
    JobStatus.FAILED: EventType.FAILED,
    JobStatus.CANCELED: EventType.CANCELED,
}


class FailureReason(StrEnum):
    """Why a job failed, as a small fixed set (metric labels must stay bounded; `job.error` has the text)."""

    INVALID_INPUT = "invalid_input"  # bad source, unreadable or over-limit media
    FFMPEG = "ffmpeg"  # ffmpeg exited with an error
    TIME_LIMIT = "time_limit"
    STALLED = "stalled"
    GAVE_UP = "gave_up"  # MAX_ATTEMPTS used up (worker crashes, transient errors)
    NOT_QUEUED = "not_queued"  # the queue refused the job
    OTHER = "other"


@dataclass(frozen=True)
class JobEvent:
    type: EventType
    job: Job  # the record as the store returned it after the change
    reason: FailureReason | None = None  # set on job.failed
    at: datetime = field(default_factory=utcnow)
    # Facts the record no longer holds after the change (metrics use them):
    queued_since: datetime | None = None  # job.started: when the job entered the queue it was claimed from
    speed: float | None = None  # job.completed: ffmpeg's final encode speed (x realtime), if it reported one


Listener = Callable[[JobEvent], None]
# The job fields to write with a final transition so its event is delivered durably ({} = none wanted).
OutboxEntry = Callable[[Job, EventType], Mapping[str, Any]]


class JobEvents:
    """A process's event bus: `emit` calls every listener; one listener's error never stops the others."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._outbox_entry: OutboxEntry | None = None

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def keep_outbox(self, entry_for: OutboxEntry) -> None:
        """Final events get an outbox entry made by `entry_for(job, event_type)` (the webhook dispatcher)."""
        self._outbox_entry = entry_for

    def outbox_entry(self, job: Job, event_type: EventType) -> dict[str, Any]:
        """The outbox fields to write with `job`'s move to a final status; {} when nobody delivers it."""
        if job.is_task:
            return {}  # a task's end is not the job's: its parent's final move makes the one event
        return dict(self._outbox_entry(job, event_type)) if self._outbox_entry is not None else {}

    def emit(self, event: JobEvent) -> None:
        if event.job.is_task:
            return  # tasks are parts of a job: webhooks, metrics and SSE listeners speak of jobs
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a broken listener must not break the job's lifecycle
                log.exception("events.listener_failed", event_type=event.type.value, job_id=event.job.job_id)


# Progress milestones announced as job.progress (to webhooks that asked for them).
PROGRESS_MILESTONES = (25, 50, 75)


def crossed_milestone(before: int, after: int) -> int | None:
    """The highest milestone passed when progress moved from `before` to `after`, if any."""
    passed = [m for m in PROGRESS_MILESTONES if before < m <= after]
    return passed[-1] if passed else None
