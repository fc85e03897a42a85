"""A job's files over HTTP: the output (GET /download/{id}, also through signed links), a signed link to
it, and the ffmpeg log. Streamed from storage, with byte ranges so players can seek."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import StreamingResponse

from mediaflow.api import download_links
from mediaflow.api.deps import JobDep, RangeHeader, SettingsDep, StorageDep, get_job_for_download
from mediaflow.api.downloads import stream_stored
from mediaflow.api.openapi import LOG_RESPONSE, OUTPUT_FILE_RESPONSES, Tag
from mediaflow.api.routes import authenticated_router
from mediaflow.jobs.model import Job, JobStatus
from mediaflow.jobs.outputs import decode_states
from mediaflow.jobs.schemas import DownloadLinkResponse
from mediaflow.storage.destinations import job_storage

router = authenticated_router(Tag.FILES)
# Not behind the key check: a signed link stands in for the API key (checked in get_job_for_download).
download_router = APIRouter(tags=[Tag.FILES])


@router.get(
    "/jobs/{job_id}/download-url",
    response_model=DownloadLinkResponse,
    summary="A signed, expiring link to the job's output that needs no API key header",
    responses={404: {"description": "Unknown job id"}},
)
async def download_url(job: JobDep, settings: SettingsDep) -> DownloadLinkResponse:
    token, expires = download_links.make_token(settings, job)
    return DownloadLinkResponse(
        url=f"/download/{job.job_id}?token={token}", expires_at=datetime.fromtimestamp(expires, UTC)
    )


@download_router.get(
    "/download/{job_id}",
    summary="Download a completed job's output",
    response_class=StreamingResponse,
    # An API key, or none at all with a signed link's token: the empty requirement says "optional".
    openapi_extra={"security": [{"ApiKey": []}, {"Bearer": []}, {}]},
    responses={
        **OUTPUT_FILE_RESPONSES,
        401: {"description": "Missing or invalid API key (only when API_KEYS is set)"},
        403: {"description": "The signed link is invalid or expired"},
        404: {"description": "Unknown job id"},
        409: {
            "description": "The job has not completed, or it made more than one file: "
            "GET /jobs/{job_id}/files lists them, each with its own URL"
        },
        416: {"description": "The requested range starts past the end of the file"},
    },
)
async def download(
    job: Annotated[Job, Depends(get_job_for_download)],
    storage: StorageDep,
    settings: SettingsDep,
    range_header: RangeHeader = None,
):
    if job.status is not JobStatus.COMPLETED:
        reason = f": {job.error}" if job.status is JobStatus.FAILED and job.error else ""
        raise HTTPException(
            409, detail=f"job {job.job_id} is {job.status.value}{reason}; only a completed job has an output"
        )
    if job.has_outputs:
        refuse_many_files(job)
    if job.output_path is None:  # completed without a file: only a record written by hand could be so
        raise HTTPException(404, detail=f"job {job.job_id} completed without an output file")
    storage = job_storage(storage, settings, job.job_id, job.destination)  # a delivered output is read there
    return await stream_stored(job.output_path, storage, settings, disposition="attachment", range_header=range_header)


def refuse_many_files(job: Job) -> None:
    """One URL, one file: a job of many files (several outputs, an HLS ladder) is never answered with
    its first file under the job's name; the answer names where each file is."""
    states = decode_states(job.outputs)
    paths = [f.path for state in states for f in state.files]
    segments = sum(state.segments.count for state in states if state.segments)
    if len(paths) + segments <= 1:
        return
    shown = ", ".join(paths[:4]) + (", …" if len(paths) > 4 else "")
    more = f" and {segments} media segments" if segments else ""
    raise HTTPException(
        409,
        detail=f"job {job.job_id} made {len(paths)} files ({shown}){more}, so /download/{job.job_id} has no one "
        f"file to send: GET /jobs/{job.job_id}/files lists them, each with its own URL "
        f"(the CLI: `mediaflow download {job.job_id} --all`)",
    )


@router.get(
    "/jobs/{job_id}/log",
    summary="The ffmpeg log of a job's last run",
    response_class=StreamingResponse,
    responses={**LOG_RESPONSE, 404: {"description": "Unknown job, or no log yet"}},
)
async def job_log(job: JobDep, storage: StorageDep, settings: SettingsDep):
    if not job.log_path:
        raise HTTPException(404, detail=f"job {job.job_id} has no ffmpeg log yet")
    storage = job_storage(storage, settings, job.job_id, job.destination)
    return await stream_stored(job.log_path, storage, settings, disposition="inline")
