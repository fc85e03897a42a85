"""The job store: the `JobStore` protocol every backend implements, and `open_store(settings)`.

A store knows nothing about the job lifecycle. It offers one primitive for change, `update`, which
applies a set of field changes only if the record still matches an `Expect` condition, atomically,
and bumps `version`. The lifecycle (`lifecycle.py`) builds every status change on top of it, which
is what makes claims exclusive and stops a slow or zombie worker from overwriting a newer state.

A store keeps two kinds of record (`RecordKind`) side by side: jobs, and the tasks of spread jobs.
`get`, listings and counts answer with jobs only, so nothing that speaks of jobs (the API, webhooks,
metrics) can meet a task; `get_record`, `list_tasks` and `list_queued_tasks` are the task side.
`update` and `delete` take the id of either kind: a task is claimed, leased and settled like a job.

Backends: `sqlite.py` (embedded default), `mongo.py`, `dynamo.py`.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from mediaflow.jobs.model import Job, JobStatus

from .templates import TemplateStore
from .workers import WorkerRegistry

# `list[Job]` under another name: inside JobStore, `list` is the method of that name.
JobList = list[Job]


class JobExistsError(Exception):
    """`create` was called with a job_id that is already stored."""


class StoreUnavailableError(Exception):
    """The configured job store cannot be reached or is misconfigured."""


@dataclass(frozen=True)
class Expect:
    """Conditions a record must meet for an `update` to apply. None means "don't care".

    - status: the record's status must be one of these.
    - worker_id: the record must be held by this worker (the lease holder).
    - version: the record must not have changed since it was read.
    - awaiting_tasks: the job's work must (True) or must not (False) be out in its tasks.
    """

    status: frozenset[JobStatus] | None = None
    worker_id: str | None = None
    version: int | None = None
    awaiting_tasks: bool | None = None

    @classmethod
    def of(
        cls,
        *statuses: JobStatus,
        worker_id: str | None = None,
        version: int | None = None,
        awaiting_tasks: bool | None = None,
    ) -> Expect:
        status = frozenset(statuses) if statuses else None
        return cls(status=status, worker_id=worker_id, version=version, awaiting_tasks=awaiting_tasks)

    def matches(self, job: Job) -> bool:
        """The same check in Python, for backends that cannot express it natively and for tests."""
        return (
            (self.status is None or job.status in self.status)
            and (self.worker_id is None or job.worker_id == self.worker_id)
            and (self.version is None or job.version == self.version)
            and (self.awaiting_tasks is None or job.awaiting_tasks == self.awaiting_tasks)
        )


# Fields that `update` may change. job_id/created_at/version are managed by the store itself, and a
# record never changes kind (nor the job a task belongs to).
_FIXED_FIELDS = {"job_id", "created_at", "version", "updated_at", "record_kind", "parent_id"}
UPDATABLE_FIELDS = frozenset(Job.model_fields) - _FIXED_FIELDS
# Before record kinds, a job whose work was out in tasks was "held" by this worker_id; stores opening
# older data turn such a job into one awaiting its tasks (no worker), so a worker can take it back.
OLD_TASKS_HOLDER = "tasks"
# How many queued tasks `list_queued_tasks` hands out when not told: a few, for workers to try in turn.
QUEUED_TASKS_BATCH = 8


@runtime_checkable
class JobStore(Protocol):
    # Read-only members (properties), so each backend's own template store and registry fit them.
    @property
    def templates(self) -> TemplateStore:
        """Saved templates, kept by the same backend."""

    @property
    def workers(self) -> WorkerRegistry:
        """Worker presence, kept by the same backend."""

    async def create(self, job: Job) -> None:
        """Insert a new record, a job or a task. Raises JobExistsError if job_id is taken."""

    async def get(self, job_id: str) -> Job | None:
        """The job with this id; None for an unknown id and for a task's id."""

    async def get_record(self, record_id: str) -> Job | None:
        """The job or the task with this id (for what handles both alike: claiming a delivery)."""

    async def list(
        self,
        *,
        limit: int,
        skip: int = 0,
        status: JobStatus | None = None,
        owner: str | None = None,
        oldest_first: bool = False,
    ) -> builtins.list[Job]:
        """Jobs ordered by created_at (newest first unless oldest_first), job_id as tie-breaker.
        Task records are never listed or counted here: see `list_tasks` and `list_queued_tasks`."""

    async def count(self, *, status: JobStatus | None = None, owner: str | None = None) -> int:
        """How many jobs match (for metrics and dashboards)."""

    async def count_active(self, owner: str | None) -> int:
        """How many of this owner's jobs are queued or processing (None: the jobs without an owner).
        Read from an index of active jobs per owner, so it costs the same however many finished
        jobs the owner has (MAX_ACTIVE_JOBS_PER_KEY checks it on every submission)."""

    async def update(self, job_id: str, changes: Mapping[str, Any], expect: Expect = Expect()) -> Job | None:
        """Atomically apply `changes` to a job or a task (and version += 1, updated_at = now) if the
        record matches `expect`. Returns the updated record, or None if it does not exist or did not
        match."""

    async def delete(self, job_id: str, expect: Expect = Expect()) -> bool:
        """Remove the job or task (and anything the store keeps for it, such as an idempotency guard)
        if the record matches `expect`, atomically. True if it was removed."""

    async def find_by_idempotency_key(self, owner: str | None, key: str) -> Job | None: ...

    async def list_tasks(self, parent_id: str) -> builtins.list[Job]:
        """The task records of one job, oldest first (created_at, then job_id). Served by an index
        holding task records only."""

    async def list_queued_tasks(self, limit: int = QUEUED_TASKS_BATCH) -> builtins.list[Job]:
        """Queued task records of every job, oldest first (created_at, then job_id), at most `limit`.
        One query on an index that holds queued tasks only, however many jobs and tasks are stored."""

    async def list_expired_leases(self, now: datetime, limit: int = 100) -> builtins.list[Job]:
        """Processing jobs and tasks whose lease_expires_at is before `now`."""

    async def list_webhooks_due(self, now: datetime, limit: int = 100) -> builtins.list[Job]:
        """Jobs whose webhook_due_at is at or before `now`, earliest first (the webhook outbox; only
        final jobs carry it, see webhooks/outbox.py). Served by an index holding pending jobs only."""

    async def ping(self) -> None:
        """Raise StoreUnavailableError unless the backend answers."""

    async def close(self) -> None: ...


def check_changes(changes: Mapping[str, Any]) -> None:
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"fields not updatable: {sorted(unknown)}")
