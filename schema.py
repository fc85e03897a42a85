"""The job's shapes, public face (re-exports only): the stored record is in `mediaflow/jobs/model.py`,
the JSON the API answers with in `mediaflow/jobs/schemas.py`."""

from mediaflow.jobs.model import Job, JobStatus, Method, Phase
from mediaflow.jobs.schemas import (
    JobStatusListResponse,
    JobStatusResponse,
    ProcessRequest,
    ProcessResponse,
    UploadResponse,
)

__all__ = [
    "Job",
    "JobStatusListResponse",
    "JobStatus",
    "JobStatusResponse",
    "Method",
    "Phase",
    "ProcessRequest",
    "ProcessResponse",
    "UploadResponse",
]
