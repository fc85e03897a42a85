"""The seed's job endpoints: POST /process, GET /process (the list), GET /status/{id}, and GET /methods."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query

from mediaflow.api.deps import JobDep, JobsDep, OwnerDep, PageLimit, PageSkip
from mediaflow.api.openapi import Tag
from mediaflow.api.routes import authenticated_router
from mediaflow.jobs.model import JobStatus
from mediaflow.jobs.schemas import (
    METHOD_LABELS,
    JobStatusListResponse,
    JobStatusResponse,
    MethodInfo,
    MethodsResponse,
    ProcessRequest,
    ProcessResponse,
)
from mediaflow.jobs.service import Submission
from mediaflow.media.operations import allowed_formats, default_format

router = authenticated_router(Tag.JOBS)

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=200,
        description=("Repeat a request safely: the same key (per API key) with the same body returns the first job"),
    ),
]


@router.post(
    "/process",
    response_model=ProcessResponse,
    summary="Queue a processing job",
    responses={
        409: {"description": "Idempotency-Key reused with a different request"},
        413: {"description": "Body larger than MAX_REQUEST_BODY_BYTES"},
        422: {"description": "Invalid source, method or output format"},
        429: {"description": "MAX_ACTIVE_JOBS_PER_KEY jobs queued or processing already; see Retry-After"},
        503: {"description": "The queue did not accept the job"},
    },
)
async def process(
    body: ProcessRequest, jobs: JobsDep, owner: OwnerDep, idempotency_key: IdempotencyKeyHeader = None
) -> ProcessResponse:
    submission = Submission(
        source=body.source,
        method_name=body.method_name,
        output_format=body.output_format,
        callback_url=body.callback_url,
        callback_progress=body.callback_progress,
        destination=body.destination,
    )
    job = await jobs.submit(submission, owner=owner, idempotency_key=idempotency_key)
    return ProcessResponse(job_id=job.job_id, status=job.status)


@router.get("/methods", response_model=MethodsResponse, summary="The processing methods and their output formats")
async def methods() -> MethodsResponse:
    return MethodsResponse(
        methods=[
            MethodInfo(
                name=method,
                label=label,
                description=description,
                formats=list(allowed_formats(method)),
                default_format=default_format(method),
            )
            for method, (label, description) in METHOD_LABELS.items()
        ]
    )


@router.get("/process", response_model=JobStatusListResponse, summary="List jobs, newest first")
async def list_jobs(
    jobs: JobsDep,
    owner: OwnerDep,
    limit: PageLimit = 10,
    skip: PageSkip = 0,
    status: JobStatus | None = None,
    idempotency_key: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description=(
                "Only the job submitted with this Idempotency-Key, if any (e.g. to resume a client that "
                "uploads its file anew on each try)"
            ),
        ),
    ] = None,
) -> JobStatusListResponse:
    if idempotency_key is not None:
        found = await jobs.by_idempotency_key(idempotency_key, owner=owner)
        listed = [found] if found is not None and (status is None or found.status is status) and skip == 0 else []
    else:
        listed = await jobs.page(owner=owner, limit=limit, skip=skip, status=status)
    return JobStatusListResponse(jobs=[JobStatusResponse.from_job(job) for job in listed], count=len(listed))


@router.get(
    "/status/{job_id}",
    response_model=JobStatusResponse,
    summary="A job's status and progress",
    responses={404: {"description": "Unknown job id"}},
)
async def status(job: JobDep) -> JobStatusResponse:
    return JobStatusResponse.from_job(job)
