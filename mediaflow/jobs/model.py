"""The job record every store keeps, its status and phase enums, and the timestamp format they share.
The public JSON shapes built from it are in `mediaflow/jobs/schemas.py`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, model_validator

# Timestamps are stored and sent as fixed-width UTC ISO strings ("2026-11-25T09:15:10.000000Z") so
# that string order equals time order in every store (SQLite text columns, DynamoDB sort keys).
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def utcnow() -> datetime:
    return datetime.now(UTC)


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str, when_used="json")]


class JobStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})
# The statuses that count against MAX_ACTIVE_JOBS_PER_KEY: waiting for a worker or on one.
ACTIVE_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.PROCESSING})
# The Job fields of the webhook outbox; all None means no final event is waiting for delivery.
WEBHOOK_OUTBOX_FIELDS = ("webhook_event", "webhook_event_id", "webhook_due_at")


class Method(StrEnum):
    COMPRESS = "compress"
    EXTRACT_AUDIO = "extract_audio"
    RESIZE = "resize"
    CONVERT_FORMAT = "convert_format"
    BLACK_AND_WHITE = "black_and_white"


class Phase(StrEnum):
    """Where a job is within its run; `progress` is the overall percentage across phases."""

    QUEUED = "queued"
    DOWNLOADING = "downloading"
    PROBING = "probing"
    ENCODING = "encoding"
    UPLOADING = "uploading"
    DONE = "done"


class RecordKind(StrEnum):
    """What a stored record is. A job is what users submit and see; a task is one piece of a spread
    job's work (jobs/tasks.py), claimed, leased and reaped like a job but never shown or counted as one."""

    JOB = "job"
    TASK = "task"


def new_job_id() -> str:
    return str(uuid.uuid4())


class Job(BaseModel):
    """The job record: the single source of truth about a job and about who is processing it.

    `version` grows by one on every update; stores use it for optimistic concurrency, so a decision
    taken on a stale read (a reaper re-queuing a lease that was just renewed) cannot be applied.
    """

    model_config = ConfigDict(use_enum_values=False)

    job_id: str = Field(default_factory=new_job_id)
    status: JobStatus = JobStatus.QUEUED
    # A seed job (POST /process) has a method and a format; a job from POST /jobs has outputs instead.
    method_name: Method | None = None
    source: str
    output_format: str | None = None
    progress: int = 0
    phase: Phase = Phase.QUEUED
    created_at: Timestamp = Field(default_factory=utcnow)
    updated_at: Timestamp = Field(default_factory=utcnow)
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    error: str | None = None
    output_path: str | None = None
    log_path: str | None = None
    worker_id: str | None = None
    lease_expires_at: Timestamp | None = None
    attempts: int = 0
    version: int = 0
    owner: str | None = None
    idempotency_key: str | None = None
    eta_seconds: float | None = None
    speed: float | None = None
    # The downloading phase: bytes of the source fetched so far, and its size when the origin says it.
    downloaded_bytes: int | None = None
    source_size_bytes: int | None = None
    # Webhooks: where to send job events, whether progress milestones are wanted, and how delivery went.
    callback_url: str | None = None
    callback_progress: bool = False
    # Where the job's files are delivered ("s3://bucket/prefix/", storage/destinations.py); None: OUTPUT_PREFIX.
    destination: str | None = None
    webhook_attempts: int = 0
    webhook_last_result: str | None = None
    # The webhook outbox: the final event still to be delivered (set in the same update that made the
    # job final; see webhooks/outbox.py). `webhook_event_id` is the webhook-id of every attempt
    # of it; `webhook_due_at` is when any process may next attempt it. All None: nothing pending.
    webhook_event: str | None = None
    webhook_event_id: str | None = None
    webhook_due_at: Timestamp | None = None
    # The W3C traceparent of the request that submitted the job (tracing on): the worker's spans and
    # the webhooks join that trace, in whichever process and however late (observability/tracing.py).
    traceparent: str | None = None
    # POST /jobs: the validated outputs, the template they came from, each output's state, and the
    # probed source, as JSON text (see jobs/outputs.py), so every store keeps them as plain strings.
    template: str | None = None
    outputs_spec: str | None = None
    outputs: str | None = None
    source_media: str | None = None
    # A task: one piece of a job's work (an output, a chunk, the audio, a rendition) with its own
    # record, claimed, leased, reaped and retried like a job. `parent_id` names the job it belongs to,
    # `task` is its spec as JSON text. Stores answer `get`, listings and counts with jobs only;
    # `get_record`, `list_tasks` and `list_queued_tasks` reach tasks.
    record_kind: RecordKind = RecordKind.JOB
    parent_id: str | None = None
    task: str | None = None
    # A job whose work is out in its tasks: still `processing`, held by no worker, with a lease as long
    # as JOB_TIMEOUT_S. The lifecycle sets it (hand_to_tasks) and clears it (take_from_tasks, and every
    # move out of processing); taking the job back is conditional on it, so only one worker gets it.
    awaiting_tasks: bool = False

    @model_validator(mode="before")
    @classmethod
    def _record_kind_of_older_records(cls, data: Any) -> Any:
        """Records stored before `record_kind` existed are tasks exactly when they have a parent."""
        if isinstance(data, dict) and data.get("record_kind") is None:
            kind = RecordKind.TASK if data.get("parent_id") is not None else RecordKind.JOB
            return {**data, "record_kind": kind}
        return data

    @model_validator(mode="after")
    def _a_task_has_a_job(self) -> Job:
        if (self.record_kind is RecordKind.TASK) != (self.parent_id is not None):
            rule = "needs a parent_id" if self.parent_id is None else "has no parent_id"
            raise ValueError(f"a {self.record_kind.value} record {rule}")
        return self

    @property
    def is_task(self) -> bool:
        return self.record_kind is RecordKind.TASK

    @property
    def has_outputs(self) -> bool:
        return self.outputs_spec is not None

    @property
    def label(self) -> str:
        """What the job makes: the method's name, or "outputs" for a POST /jobs job (a bounded value
        for logs and metric labels; not a task's kind, which is `TaskSpec.kind`)."""
        return self.method_name.value if self.method_name is not None else "outputs"

    def to_document(self) -> dict[str, Any]:
        """A JSON-compatible dict (timestamps as fixed-width strings, enums as values)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Job:
        return cls.model_validate({k: v for k, v in document.items() if k in cls.model_fields})
