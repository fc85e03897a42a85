"""The routes that act on one job: cancel, retry, delete. Each is a conditional change (lifecycle.py,
job_removal.py), so a request racing a worker or another request gets a 409 with the job's state,
never a half-applied change."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from mediaflow.jobs import lifecycle
from mediaflow.api.deps import EventsDep, JobDep, QueueDep, StorageDep, StoreDep
from mediaflow.queue import QueueError
from mediaflow.jobs.retention import remove_job
from mediaflow.logs import get_logger
from mediaflow.jobs.model import FINAL_STATUSES
from mediaflow.jobs.schemas import JobStatusResponse

log = get_logger("api")


def register_job_actions(api: APIRouter) -> None:
    @api.post("/jobs/{job_id}/cancel", response_model=JobStatusResponse, summary="Cancel a queued or running job",
              responses={404: {"description": "Unknown job id"}, 409: {"description": "The job has already finished"}})
    async def cancel(job: JobDep, store: StoreDep, events: EventsDep) -> JobStatusResponse:
        canceled = await lifecycle.cancel(store, job, events=events)
        if canceled is None:
            current = await store.get(job.job_id)
            raise HTTPException(409, detail=f"job {job.job_id} is {current.status.value}; only queued or processing jobs can be canceled")
        log.info("job.canceled", job_id=job.job_id)
        return JobStatusResponse.from_job(canceled)

    @api.post("/jobs/{job_id}/retry", response_model=JobStatusResponse, summary="Run a failed or canceled job again",
              responses={404: {"description": "Unknown job id"}, 409: {"description": "The job is not failed or canceled"},
                         503: {"description": "The queue did not accept the job"}})
    async def retry(job: JobDep, store: StoreDep, queue: QueueDep, events: EventsDep) -> JobStatusResponse:
        queued = await lifecycle.retry(store, job.job_id, events=events)
        if queued is None:
            current = await store.get(job.job_id)
            raise HTTPException(409, detail=f"job {job.job_id} is {current.status.value}; only failed or canceled jobs can be retried")
        try:
            await queue.publish(job.job_id)
        except QueueError as exc:
            await lifecycle.fail_queued(store, job, f"could not be queued: {exc}", events=events)
            raise HTTPException(503, detail=f"the job could not be queued ({exc}); try again") from exc
        log.info("job.retried", job_id=job.job_id)
        return JobStatusResponse.from_job(queued)

    @api.delete("/jobs/{job_id}", status_code=204, summary="Remove a finished job, its output and its log",
                responses={404: {"description": "Unknown job id"},
                           409: {"description": "The job is queued or processing: cancel it first"}})
    async def delete_job(job: JobDep, store: StoreDep, storage: StorageDep) -> Response:
        if job.status not in FINAL_STATUSES or not await remove_job(store, storage, job):
            current = await store.get(job.job_id)
            if current is None:  # removed meanwhile by another request or the retention sweeper
                raise HTTPException(404, detail=f"job {job.job_id} not found")
            raise HTTPException(409, detail=f"job {job.job_id} is {current.status.value}; only completed, failed or "
                                            "canceled jobs can be removed (cancel it first)")
        return Response(status_code=204)
