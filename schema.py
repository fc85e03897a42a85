"""The public JSON shapes (the seed README's contract) and the job record every store keeps."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

# Timestamps are stored and sent as fixed-width UTC ISO strings ("2026-11-25T09:15:10.000000Z") so
# that string order equals time order in every store (SQLite text columns, DynamoDB sort keys).
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_timestamp(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


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
    method_name: Method
    source: str
    output_format: str
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
    # Webhooks: where to send job events, whether progress milestones are wanted, and how delivery went.
    callback_url: str | None = None
    callback_progress: bool = False
    webhook_attempts: int = 0
    webhook_last_result: str | None = None
    # The webhook outbox: the final event still to be delivered (set in the same update that made the
    # job final; see webhook_outbox.py). `webhook_event_id` is the MediaFlow-Event-Id of every attempt
    # of it; `webhook_due_at` is when any process may next attempt it. All None: nothing pending.
    webhook_event: str | None = None
    webhook_event_id: str | None = None
    webhook_due_at: Timestamp | None = None

    def to_document(self) -> dict[str, Any]:
        """A JSON-compatible dict (timestamps as fixed-width strings, enums as values)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> "Job":
        return cls.model_validate({k: v for k, v in document.items() if k in cls.model_fields})


# --- API request/response models -----------------------------------------------------------------


class ProcessRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"source": "upload://3f0c.../clip.mp4", "method_name": "compress", "output_format": "mp4"},
                {"source": "media/holiday.mov", "method_name": "extract_audio"},
                {"source": "s3://my-bucket/videos/in.mp4", "method_name": "resize", "output_format": "mkv"},
            ]
        },
    )

    source: str = Field(
        min_length=1,
        max_length=2048,
        description="An s3://bucket/key URI, an upload://… value returned by POST /upload, "
        "or a path below one of the server's LOCAL_SOURCE_ROOTS.",
    )
    method_name: Method
    output_format: str | None = Field(
        default=None,
        max_length=16,
        description="Container of the result; defaults to mp4 for video methods and mp3 for extract_audio.",
    )
    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        description="An http(s) URL that receives job.completed / job.failed / job.canceled as signed JSON "
        "POSTs (see README, Webhooks). Its host must resolve to public addresses; no credentials in the URL.",
    )
    callback_progress: bool = Field(
        default=False, description="Also send job.progress at 25, 50 and 75 %."
    )


class ProcessResponse(BaseModel):
    job_id: str
    status: JobStatus


class JobStatusResponse(BaseModel):
    """GET /status/{job_id}: the seed's eight fields first, then MediaFlow's additions."""

    job_id: str
    status: JobStatus
    progress: int
    created_at: Timestamp
    completed_at: Timestamp | None
    error: str | None
    output_path: str | None
    log_path: str | None
    method_name: Method
    source: str
    output_format: str
    phase: Phase
    started_at: Timestamp | None
    attempts: int
    eta_seconds: float | None
    speed: float | None
    callback_url: str | None = None
    callback_progress: bool = False
    webhook_attempts: int = Field(default=0, description="Webhook delivery attempts made for this job so far.")
    webhook_last_result: str | None = Field(
        default=None, description='How the last attempt went, e.g. "job.completed attempt 3: 200 OK".'
    )

    @classmethod
    def from_job(cls, job: Job) -> "JobStatusResponse":
        return cls.model_validate(job.model_dump(include=set(cls.model_fields)))


class DownloadLinkResponse(BaseModel):
    url: str = Field(description="Path of the signed download link (relative to the API's base URL); no API key needed")
    expires_at: Timestamp


class JobListResponse(BaseModel):
    jobs: list[JobStatusResponse]
    count: int = Field(description="Number of jobs in this page.")


class UploadResponse(BaseModel):
    source: str = Field(description="Pass this as `source` to POST /process.")
    filename: str
    size: int


# What each method does, for people choosing one (GET /methods, the dashboard). The formats come from
# ffmpeg_ops, which owns the actual ffmpeg options.
METHOD_LABELS: dict[Method, tuple[str, str]] = {
    Method.COMPRESS: ("Compress", "Smaller file: H.264 CRF 28 with AAC audio (VP9/Opus for webm)."),
    Method.EXTRACT_AUDIO: ("Extract audio", "The first audio track as a 192 kbit/s MP3."),
    Method.RESIZE: ("Resize to 720p", "Scaled to exactly 1280x720, H.264 (VP9 for webm)."),
    Method.CONVERT_FORMAT: ("Convert for the web", "H.264 high profile, yuv420p, fast start, AAC 192k: plays in every browser."),
    Method.BLACK_AND_WHITE: ("Black & white", "Colour removed (hue=s=0), H.264 (VP9 for webm)."),
}


class MethodInfo(BaseModel):
    name: Method
    label: str
    description: str
    formats: list[str] = Field(description="Accepted output_format values; the first is the default.")
    default_format: str


class MethodsResponse(BaseModel):
    methods: list[MethodInfo]
