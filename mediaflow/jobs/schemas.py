"""The public JSON shapes: the seed README's contract (ProcessRequest, JobStatusResponse, ...) and
MediaFlow's additions. Built from the stored record in `mediaflow/jobs/model.py`; never stored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict

from mediaflow.jobs.model import Job, JobStatus, Method, Phase, Timestamp

# Examples shown in /openapi.json and /docs (a test checks every one validates against its model).
JOB_ID = "2d0c6f5e8a9b4c1d8e7f6a5b4c3d2e1f"
STATUS_EXAMPLE: JsonDict = {
    "job_id": JOB_ID,
    "status": "completed",
    "progress": 100,
    "created_at": "2026-11-25T09:15:02.000000Z",
    "completed_at": "2026-11-25T09:15:10.000000Z",
    "error": None,
    "output_path": f"processed/{JOB_ID}/sample_compress.mp4",
    "log_path": f"processed/{JOB_ID}/ffmpeg.log",
    "method_name": "compress",
    "source": "media/sample.mp4",
    "output_format": "mp4",
    "phase": "done",
    "started_at": "2026-11-25T09:15:03.000000Z",
    "attempts": 1,
    "eta_seconds": None,
    "speed": 3.4,
    "callback_url": None,
    "callback_progress": False,
    "webhook_attempts": 0,
    "webhook_last_result": None,
}
METHOD_EXAMPLE: JsonDict = {
    "name": "compress",
    "label": "Compress",
    "description": "Smaller file: H.264 CRF 28 with AAC audio (VP9/Opus for webm).",
    "formats": ["mp4", "mov", "mkv", "webm"],
    "default_format": "mp4",
}


DESTINATION_DESCRIPTION = (
    "s3://bucket/prefix/: deliver the job's files to <prefix><job_id>/ in that bucket instead of the server's "
    "OUTPUT_PREFIX (S3 storage only; S3_DESTINATION_BUCKETS lists the allowed buckets). See docs/sources.md."
)


class ProcessRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            # The README's sample clip, so the docs' "Try it out" works as shown; for a file of your
            # own, POST /upload first and put the upload://… source it returns here.
            "examples": [
                {"source": "media/sample.mp4", "method_name": "compress", "output_format": "mp4"},
                {"source": "media/sample.mp4", "method_name": "extract_audio"},
                {"source": "media/sample.mp4", "method_name": "resize", "output_format": "webm"},
            ]
        },
    )

    source: str = Field(
        min_length=1,
        max_length=2048,
        description="An http(s):// URL (a public or presigned link, fetched by the worker), an s3://bucket/key "
        "URI, an upload://… value returned by POST /upload, or a path below one of the server's LOCAL_SOURCE_ROOTS.",
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
        "POSTs (see docs/webhooks.md). Its host must resolve to public addresses; no credentials in the URL.",
    )
    callback_progress: bool = Field(default=False, description="Also send job.progress at 25, 50 and 75 %.")
    destination: str | None = Field(default=None, max_length=1024, description=DESTINATION_DESCRIPTION)

    @field_validator("source", "output_format", "callback_url", "destination")
    @classmethod
    def _valid_unicode(cls, value: str | None) -> str | None:
        # JSON allows "\ud800" (a lone surrogate), which no file name, URL or UTF-8 encoder accepts.
        if value is not None:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("must be valid Unicode text (it has a lone surrogate such as \\ud800)") from None
        return value


class ProcessResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"job_id": JOB_ID, "status": "queued"}]})

    job_id: str
    status: JobStatus


class JobStatusResponse(BaseModel):
    """GET /status/{job_id}: the seed's eight fields first, then MediaFlow's additions."""

    model_config = ConfigDict(json_schema_extra={"examples": [STATUS_EXAMPLE]})

    job_id: str
    status: JobStatus
    progress: int
    created_at: Timestamp
    completed_at: Timestamp | None
    error: str | None
    output_path: str | None
    log_path: str | None
    method_name: Method | None = Field(description="null for a job made by POST /jobs (see GET /jobs/{id}).")
    source: str
    output_format: str | None
    template: str | None = Field(default=None, description="The template a POST /jobs job was made from, if any.")
    phase: Phase
    started_at: Timestamp | None
    attempts: int
    eta_seconds: float | None
    speed: float | None
    downloaded_bytes: int | None = Field(default=None, description="Bytes of the source fetched so far.")
    source_size_bytes: int | None = Field(default=None, description="The source's size, when its server says it.")
    callback_url: str | None = None
    callback_progress: bool = False
    webhook_attempts: int = Field(default=0, description="Webhook delivery attempts made for this job so far.")
    webhook_last_result: str | None = Field(
        default=None, description='How the last attempt went, e.g. "job.completed attempt 3: 200 OK".'
    )
    destination: str | None = Field(default=None, description="Where the job's files are delivered, if asked.")

    @classmethod
    def from_job(cls, job: Job) -> JobStatusResponse:
        return cls.model_validate(job.model_dump(include=set(cls.model_fields)))


class DownloadLinkResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"url": f"/download/{JOB_ID}?token=1795606510.3f9a0c2b7e", "expires_at": "2026-11-25T10:15:10.000000Z"}
            ]
        }
    )

    url: str = Field(description="Path of the signed download link (relative to the API's base URL); no API key needed")
    expires_at: Timestamp


class JobStatusListResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"jobs": [STATUS_EXAMPLE], "count": 1}]})

    jobs: list[JobStatusResponse]
    count: int = Field(description="Number of jobs in this page.")


class UploadResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "upload://9f1c2d3e4b5a69788796a5b4c3d2e1f0/sample.mp4",
                    "filename": "sample.mp4",
                    "size": 1214327,
                }
            ]
        }
    )

    source: str = Field(description="Pass this as `source` to POST /process.")
    filename: str
    size: int


# What each method does, for people choosing one (GET /methods, the dashboard). The formats come from
# ffmpeg_ops, which owns the actual ffmpeg options.
METHOD_LABELS: dict[Method, tuple[str, str]] = {
    Method.COMPRESS: ("Compress", "Smaller file: H.264 CRF 28 with AAC audio (VP9/Opus for webm)."),
    Method.EXTRACT_AUDIO: ("Extract audio", "The first audio track as a 192 kbit/s MP3."),
    Method.RESIZE: ("Resize to 720p", "Scaled to exactly 1280x720, H.264 (VP9 for webm)."),
    Method.CONVERT_FORMAT: (
        "Convert for the web",
        "H.264 high profile, yuv420p, fast start, AAC 192k: plays in every browser.",
    ),
    Method.BLACK_AND_WHITE: ("Black & white", "Colour removed (hue=s=0), H.264 (VP9 for webm)."),
}


class MethodInfo(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [METHOD_EXAMPLE]})

    name: Method
    label: str
    description: str
    formats: list[str] = Field(description="Accepted output_format values; the first is the default.")
    default_format: str


class MethodsResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"methods": [METHOD_EXAMPLE]}]})

    methods: list[MethodInfo]
