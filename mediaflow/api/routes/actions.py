"""The routes that act on one job: cancel, retry, delete. The job service does the work (each change is
conditional); its errors become 404 / 409 / 503 in `mediaflow.api.errors`."""

from __future__ import annotations

from fastapi.responses import Response

from mediaflow.api.deps import JobDep, JobsDep
from mediaflow.api.openapi import Tag
from mediaflow.api.routes import authenticated_router
from mediaflow.jobs.schemas import JobStatusResponse

router = authenticated_router(Tag.JOBS)


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobStatusResponse,
    summary="Cancel a queued or running job",
    responses={404: {"description": "Unknown job id"}, 409: {"description": "The job has already finished"}},
)
async def cancel(job: JobDep, jobs: JobsDep) -> JobStatusResponse:
    return JobStatusResponse.from_job(await jobs.cancel(job))


@router.post(
    "/jobs/{job_id}/retry",
    response_model=JobStatusResponse,
    summary="Run a failed or canceled job again",
    responses={
        404: {"description": "Unknown job id"},
        409: {"description": "The job is not failed or canceled"},
        429: {"description": "MAX_ACTIVE_JOBS_PER_KEY jobs queued or processing already"},
        503: {"description": "The queue did not accept the job"},
    },
)
async def retry(job: JobDep, jobs: JobsDep) -> JobStatusResponse:
    return JobStatusResponse.from_job(await jobs.retry(job))


@router.delete(
    "/jobs/{job_id}",
    status_code=204,
    summary="Remove a finished job, its output and its log",
    responses={
        404: {"description": "Unknown job id"},
        409: {"description": "The job is queued or processing: cancel it first"},
    },
)
async def delete_job(job: JobDep, jobs: JobsDep) -> Response:
    await jobs.delete(job)
    return Response(status_code=204)
