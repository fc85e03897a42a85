"""The job lifecycle: every status change a job can make, as conditional updates on the store.

    queued ──claim──▶ processing ──complete──▶ completed
      │ ▲                │  │ └────fail────▶ failed ──retry──┐
      │ └─release/expire─┘  └────cancel───▶ canceled ─retry──┤
      └──────────────cancel / give up─────────────────────────┘  (retry goes back to queued)

A job whose work is out in its tasks (jobs/tasks.py) stays `processing` with `awaiting_tasks` set and
no worker: `hand_to_tasks` sets it, `take_from_tasks` clears it for the worker that finishes the job,
and every move out of processing clears it too.

`TRANSITIONS` is the one table of allowed moves. Each function below names the statuses it moves
from; the store applies the change only if the record is still in one of them (and, for worker
moves, still held by that worker), so a slow or zombie worker can never overwrite a newer state.

Every move to a final status (`_finish`) also writes the job's webhook outbox entry, when the event
bus says one is wanted (see events.JobEvents.outbox_entry), in the same conditional update: the final
event's delivery is then as durable as the status itself. The final-transition functions take the
caller's Job snapshot for that (its callback_url never changes); `retry` clears the outbox.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from mediaflow.jobs.events import EVENT_FOR_STATUS, EventType, FailureReason, JobEvent, JobEvents
from mediaflow.jobs.model import WEBHOOK_OUTBOX_FIELDS, Job, JobStatus, Phase, utcnow
from mediaflow.store import Expect, JobStore

S = JobStatus
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.QUEUED: frozenset({S.PROCESSING, S.CANCELED, S.FAILED}),
    S.PROCESSING: frozenset({S.COMPLETED, S.FAILED, S.CANCELED, S.QUEUED}),
    S.FAILED: frozenset({S.QUEUED}),
    S.CANCELED: frozenset({S.QUEUED}),
    S.COMPLETED: frozenset(),
}

# Fields describing one run; cleared when a job goes back to the queue.
_RUN_RESET = {
    "worker_id": None,
    "awaiting_tasks": False,
    "lease_expires_at": None,
    "phase": Phase.QUEUED,
    "progress": 0,
    "eta_seconds": None,
    "speed": None,
    "downloaded_bytes": None,
    "source_size_bytes": None,
}
# A retried job's old final event is obsolete (its new run will have its own): nothing left to deliver.
_NO_PENDING_WEBHOOK = dict.fromkeys(WEBHOOK_OUTBOX_FIELDS)


def _check_allowed(sources: Iterable[JobStatus], target: JobStatus) -> frozenset[JobStatus]:
    sources = frozenset(sources)
    for source in sources:
        if target not in TRANSITIONS[source]:
            raise AssertionError(f"transition {source} -> {target} is not in TRANSITIONS")
    return sources


async def _move(
    store: JobStore,
    job_id: str,
    sources: Iterable[JobStatus],
    target: JobStatus,
    changes: Mapping[str, Any],
    *,
    worker_id: str | None = None,
    version: int | None = None,
    events: JobEvents | None = None,
    event: EventType | None = None,
    reason: FailureReason | None = None,
    **event_facts: Any,
) -> Job | None:
    """Apply a transition; announce it on `events` only if the store applied it (with `event_facts`,
    see JobEvent)."""
    allowed = _check_allowed(sources, target)
    expect = Expect(status=allowed, worker_id=worker_id, version=version)
    moved = await store.update(job_id, {"status": target, **changes}, expect)
    event = event or EVENT_FOR_STATUS.get(target)
    if moved is not None and events is not None and event is not None:
        events.emit(JobEvent(event, moved, reason=reason if target is S.FAILED else None, **event_facts))
    return moved


async def _finish(
    store: JobStore,
    job: Job,
    sources: Iterable[JobStatus],
    target: JobStatus,
    changes: Mapping[str, Any],
    *,
    events: JobEvents | None = None,
    **move_options: Any,
) -> Job | None:
    """A move to a final status, with the webhook outbox entry for its event in the same update."""
    outbox = events.outbox_entry(job, EVENT_FOR_STATUS[target]) if events is not None else {}
    return await _move(store, job.job_id, sources, target, {**changes, **outbox}, events=events, **move_options)


def lease_until(lease_seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=lease_seconds)


async def claim(
    store: JobStore,
    job_id: str,
    worker_id: str,
    lease_seconds: float,
    max_attempts: int,
    events: JobEvents | None = None,
) -> Job | None:
    """Take a queued job (or task) for `worker_id`. None if it is gone, not queued, or another worker won."""
    job = await store.get_record(job_id)
    if job is None or job.status is not S.QUEUED:
        return None
    if job.attempts >= max_attempts:
        await _finish(
            store,
            job,
            [S.QUEUED],
            S.FAILED,
            {**_RUN_RESET, "phase": Phase.DONE, "completed_at": utcnow(), "error": _gave_up(job)},
            version=job.version,
            events=events,
            reason=FailureReason.GAVE_UP,
        )
        return None
    changes = {
        "worker_id": worker_id,
        "lease_expires_at": lease_until(lease_seconds),
        "started_at": utcnow(),
        "attempts": job.attempts + 1,
        "phase": Phase.DOWNLOADING,
        "progress": 0,
        "error": None,
    }
    # Conditional on the version we read: two claimers of the same job cannot both succeed.
    # A queued record is not written until claimed, so its updated_at is when it entered the queue.
    return await _move(
        store,
        job_id,
        [S.QUEUED],
        S.PROCESSING,
        changes,
        version=job.version,
        events=events,
        queued_since=job.updated_at,
    )


def _gave_up(job: Job) -> str:
    reason = f": last error: {job.error}" if job.error else ""
    return f"gave up after {job.attempts} attempts{reason}"


async def renew(store: JobStore, job_id: str, worker_id: str, lease_seconds: float, **progress: Any) -> Job | None:
    """Extend the lease (and record progress). None means the lease is lost: the job was canceled,
    or re-queued and taken by another worker, and this worker must stop working on it."""
    changes = {"lease_expires_at": lease_until(lease_seconds), **progress}
    return await store.update(job_id, changes, Expect.of(S.PROCESSING, worker_id=worker_id))


async def hand_to_tasks(
    store: JobStore, job_id: str, worker_id: str, lease_seconds: float, **changes: Any
) -> Job | None:
    """The job's work now runs as task records: it stays `processing` (no status move), awaiting its
    tasks, held by no worker, with a lease of `lease_seconds` (JOB_TIMEOUT_S) that each settled task
    renews, so the reaper leaves it alone while the tasks run. None: this worker no longer held it
    (canceled)."""
    awaiting = {"worker_id": None, "awaiting_tasks": True, "lease_expires_at": lease_until(lease_seconds)}
    return await store.update(job_id, {**awaiting, **changes}, Expect.of(S.PROCESSING, worker_id=worker_id))


async def renew_awaiting_tasks(store: JobStore, job_id: str, lease_seconds: float, **progress: Any) -> Job | None:
    """Extend the long lease of a job awaiting its tasks (and record their progress). None: the job no
    longer awaits them (canceled, re-queued, or taken back by a worker to finish it)."""
    changes = {"lease_expires_at": lease_until(lease_seconds), **progress}
    return await store.update(job_id, changes, Expect.of(S.PROCESSING, awaiting_tasks=True))


async def take_from_tasks(store: JobStore, job_id: str, worker_id: str, lease_seconds: float) -> Job | None:
    """Take a job awaiting its tasks for `worker_id` to finish it (join or fail). The update is
    conditional on the job still awaiting them, so of two workers settling the last tasks at once only
    one gets it."""
    changes = {"worker_id": worker_id, "awaiting_tasks": False, "lease_expires_at": lease_until(lease_seconds)}
    return await store.update(job_id, changes, Expect.of(S.PROCESSING, awaiting_tasks=True))


async def complete(
    store: JobStore,
    job: Job,
    worker_id: str,
    output_path: str,
    log_path: str,
    events: JobEvents | None = None,
    speed: float | None = None,
) -> Job | None:
    """`job`: the caller's snapshot. `speed`: ffmpeg's final encode speed, told to listeners (the
    record's live speed is cleared)."""
    changes = {
        **_RUN_RESET,
        "worker_id": worker_id,
        "phase": Phase.DONE,
        "progress": 100,
        "completed_at": utcnow(),
        "output_path": output_path,
        "log_path": log_path,
        "error": None,
    }
    return await _finish(
        store, job, [S.PROCESSING], S.COMPLETED, changes, worker_id=worker_id, events=events, speed=speed
    )


async def fail(
    store: JobStore,
    job: Job,
    worker_id: str,
    error: str,
    log_path: str | None = None,
    events: JobEvents | None = None,
    reason: FailureReason = FailureReason.OTHER,
) -> Job | None:
    changes = {
        **_RUN_RESET,
        "worker_id": worker_id,
        "phase": Phase.DONE,
        "completed_at": utcnow(),
        "error": error,
        "log_path": log_path,
    }
    return await _finish(
        store, job, [S.PROCESSING], S.FAILED, changes, worker_id=worker_id, events=events, reason=reason
    )


async def fail_queued(store: JobStore, job: Job, error: str, events: JobEvents | None = None) -> Job | None:
    """A job that never reached a worker (e.g. the queue refused it)."""
    changes = {**_RUN_RESET, "phase": Phase.DONE, "completed_at": utcnow(), "error": error}
    return await _finish(store, job, [S.QUEUED], S.FAILED, changes, events=events, reason=FailureReason.NOT_QUEUED)


async def release(
    store: JobStore, job_id: str, worker_id: str, reason: str | None = None, events: JobEvents | None = None
) -> Job | None:
    """Give a job back to the queue (shutdown, transient failure); another worker may take it."""
    changes = {**_RUN_RESET, "error": reason}
    return await _move(
        store, job_id, [S.PROCESSING], S.QUEUED, changes, worker_id=worker_id, events=events, event=EventType.REQUEUED
    )


async def cancel(store: JobStore, job: Job, events: JobEvents | None = None) -> Job | None:
    """Cancel a queued or running job; a running worker notices at its next lease renewal."""
    changes = {**_RUN_RESET, "phase": Phase.DONE, "completed_at": utcnow(), "error": "canceled by request"}
    return await _finish(store, job, [S.QUEUED, S.PROCESSING], S.CANCELED, changes, events=events)


async def retry(store: JobStore, job_id: str, events: JobEvents | None = None) -> Job | None:
    """Run a failed or canceled job again, with a fresh attempt budget (and no final event pending)."""
    changes = {
        **_RUN_RESET,
        **_NO_PENDING_WEBHOOK,
        "attempts": 0,
        "completed_at": None,
        "error": None,
        "output_path": None,
        "log_path": None,
    }
    return await _move(store, job_id, [S.FAILED, S.CANCELED], S.QUEUED, changes, events=events, event=EventType.RETRIED)


async def _wake_parent(store: JobStore, task: Job, events: JobEvents | None) -> Job | None:
    """A task failed for good: queue its job again, so a worker takes it now and fails it (its other
    tasks are canceled there) instead of when another task settles or its long lease ends."""
    if task.parent_id is None:
        return None  # not a task
    parent = await store.get(task.parent_id)
    if parent is None or not parent.awaiting_tasks:
        return None  # canceled, or already taken back by a worker
    # The claim that finishes it is not a new attempt at the work: give back the one it will count.
    changes = {
        **_RUN_RESET,
        "attempts": max(0, parent.attempts - 1),
        "error": f"a task failed ({task.error or 'no reason given'}); finishing the job",
    }
    return await _move(
        store,
        parent.job_id,
        [S.PROCESSING],
        S.QUEUED,
        changes,
        version=parent.version,  # read while awaiting its tasks: a worker taking it back meanwhile wins
        events=events,
        event=EventType.REQUEUED,
    )


async def requeue_expired(
    store: JobStore, max_attempts: int, now: datetime | None = None, events: JobEvents | None = None
) -> list[Job]:
    """Re-queue processing jobs whose worker stopped renewing its lease (crashed, hung, or cut off);
    a job that has used up its attempts fails instead. Returns the jobs that went back to the queue."""
    now = now or utcnow()
    requeued = []
    for job in await store.list_expired_leases(now):
        stopped = (
            "its tasks did not finish within its lease (JOB_TIMEOUT_S)"
            if job.awaiting_tasks
            else f"worker {job.worker_id} stopped responding"
        )
        if job.attempts >= max_attempts:
            changes = {**_RUN_RESET, "phase": Phase.DONE, "completed_at": now, "error": f"{stopped}; {_gave_up(job)}"}
            failed = await _finish(
                store,
                job,
                [S.PROCESSING],
                S.FAILED,
                changes,
                version=job.version,
                events=events,
                reason=FailureReason.GAVE_UP,
            )
            if (
                failed is not None
                and failed.is_task
                and (parent := await _wake_parent(store, failed, events)) is not None
            ):
                requeued.append(parent)
            continue
        # Conditional on the version read: if the worker renewed meanwhile, this does nothing.
        moved = await _move(
            store,
            job.job_id,
            [S.PROCESSING],
            S.QUEUED,
            {**_RUN_RESET, "error": f"{stopped}; re-queued"},
            version=job.version,
            events=events,
            event=EventType.REQUEUED,
        )
        if moved is not None:
            requeued.append(moved)
    return requeued
