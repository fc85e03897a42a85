"""Jobs with many outputs: POST /jobs, GET /jobs, GET /jobs/{id}, and each output file over HTTP.

Files are served as `/jobs/{id}/files/<output>/<path>` (API key, or `?token=` from a signed link), and
as `/jobs/{id}/signed/<token>/<output>/<path>` for players: a playlist's relative URIs resolve under
the same token, so a player streams an HLS ladder with no header to send.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from mediaflow.api import download_links
from mediaflow.api.deps import (
    JobDep,
    JobsDep,
    OwnerDep,
    PageLimit,
    PageSkip,
    RangeHeader,
    SettingsDep,
    StorageDep,
    get_job_for_download,
)
from mediaflow.api.downloads import stream_stored
from mediaflow.api.openapi import Tag
from mediaflow.api.routes import authenticated_router
from mediaflow.api.routes.process import IdempotencyKeyHeader
from mediaflow.jobs.model import Job, JobStatus
from mediaflow.jobs.outputs import FILES_MANIFEST, JobDetailResponse, OutputFileResponse, decode_states
from mediaflow.jobs.schemas import DESTINATION_DESCRIPTION
from mediaflow.jobs.service import Submission
from mediaflow.media.outputs.params import NAME_PATTERN
from mediaflow.media.outputs.spec import OutputList
from mediaflow.storage import ObjectNotFoundError
from mediaflow.storage.destinations import job_storage, parse_destination
from mediaflow.storage.keys import output_key

router = authenticated_router(Tag.JOBS)
signed_router = APIRouter(tags=[Tag.FILES])  # the token in the path stands in for the API key

# The README's sample clip, as for POST /process, so /docs' "Try it out" works as shown (the first example
# is the one it fills in); for a file of your own, POST /upload first and use the upload://… it returns.
EXAMPLE: JsonDict = {
    "source": "media/sample.mp4",
    "outputs": [
        {"name": "web", "type": "video", "format": "mp4", "video": {"codec": "h264", "crf": 23, "height": 720}},
        {"name": "stream", "type": "hls", "renditions": "auto", "segment_seconds": 4},
        {"name": "poster", "type": "thumbnails", "count": 1, "width": 640},
    ],
}


class CreateJobRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"source": "media/sample.mp4", "template": "web"}, EXAMPLE]}
    )

    source: str = Field(
        min_length=1, max_length=2048, description="As for POST /process: s3://…, upload://…, or a local path."
    )
    outputs: OutputList | None = Field(
        default=None, description="1 to 16 outputs (see docs/outputs.md); or give template."
    )
    template: str | None = Field(default=None, pattern=NAME_PATTERN, description="A built-in or saved template's name.")
    callback_url: str | None = Field(default=None, max_length=2048, description="As for POST /process.")
    callback_progress: bool = False
    destination: str | None = Field(default=None, max_length=1024, description=DESTINATION_DESCRIPTION)


class CreateJobResponse(BaseModel):
    job_id: str
    status: JobStatus


class JobDetailListResponse(BaseModel):
    jobs: list[JobDetailResponse]
    count: int


class JobFilesResponse(BaseModel):
    files: list[OutputFileResponse]
    signed_base_url: str = Field(
        description="Prefix a file's path with this to fetch it without an API key, "
        "until the link expires (a player can stream HLS from it)."
    )


@router.post(
    "/jobs",
    status_code=201,
    response_model=CreateJobResponse,
    summary="Queue a job with many outputs",
    responses={
        409: {"description": "Idempotency-Key reused with a different request"},
        422: {"description": "Invalid source, outputs or template; the message says what is accepted"},
        503: {"description": "The queue did not accept the job"},
    },
)
async def create_job(
    body: CreateJobRequest, jobs: JobsDep, owner: OwnerDep, idempotency_key: IdempotencyKeyHeader = None
) -> CreateJobResponse:
    submission = Submission(
        source=body.source,
        outputs=body.outputs,
        template=body.template,
        callback_url=body.callback_url,
        callback_progress=body.callback_progress,
        destination=body.destination,
    )
    job = await jobs.submit(submission, owner=owner, idempotency_key=idempotency_key)
    return CreateJobResponse(job_id=job.job_id, status=job.status)


@router.get("/jobs", response_model=JobDetailListResponse, summary="List jobs with their outputs, newest first")
async def list_job_details(
    jobs: JobsDep,
    owner: OwnerDep,
    limit: PageLimit = 10,
    skip: PageSkip = 0,
    status: JobStatus | None = None,
) -> JobDetailListResponse:
    found = await jobs.page(owner=owner, limit=limit, skip=skip, status=status)
    return JobDetailListResponse(jobs=[JobDetailResponse.from_job(job) for job in found], count=len(found))


@router.get(
    "/jobs/{job_id}",
    response_model=JobDetailResponse,
    summary="A job, its probed source and its outputs",
    responses={404: {"description": "Unknown job id"}},
)
async def get_job(job: JobDep, jobs: JobsDep) -> JobDetailResponse:
    return JobDetailResponse.from_job(job, await jobs.tasks_of(job))


@router.get(
    "/jobs/{job_id}/files",
    response_model=JobFilesResponse,
    summary="Every file of the job's finished outputs",
    responses={404: {"description": "Unknown job id, or a job without outputs"}},
)
async def list_files(job: JobDep, storage: StorageDep, settings: SettingsDep) -> JobFilesResponse:
    token, _ = download_links.make_token(settings, job)
    signed = f"/jobs/{job.job_id}/signed/{token}/"
    base = f"/jobs/{job.job_id}/files/"
    return JobFilesResponse(
        files=[
            OutputFileResponse(**f, url=base + f["path"], location=_delivered(job, f["path"]))
            for f in await _manifest(job, storage, settings)
        ],
        signed_base_url=signed,
    )


FilePath = Annotated[str, Path(max_length=512, description='A file of the job: "stream/720p/index.m3u8".')]


@router.get(
    "/jobs/{job_id}/files/{path:path}",
    response_class=StreamingResponse,
    summary="One file of a job's output",
    responses={
        206: {"description": "One byte range"},
        403: {"description": "The signed link is invalid or expired"},
        404: {"description": "No such job or file"},
        416: {"description": "The range starts past the end"},
    },
)
async def get_file(
    job: Annotated[Job, Depends(get_job_for_download)],
    path: FilePath,
    storage: StorageDep,
    settings: SettingsDep,
    range_header: RangeHeader = None,
):
    return await _serve(job, path, storage, settings, range_header)


@signed_router.get(
    "/jobs/{job_id}/signed/{token}/{path:path}",
    response_class=StreamingResponse,
    summary="One file of a job's output through a signed link (no API key)",
    responses={
        206: {"description": "One byte range"},
        403: {"description": "The link is invalid or expired"},
        404: {"description": "No such job or file"},
        416: {"description": "The range starts past the end"},
    },
)
async def get_signed_file(
    job_id: str,
    token: Annotated[str, Path(max_length=100)],
    path: FilePath,
    request: Request,
    jobs: JobsDep,
    storage: StorageDep,
    settings: SettingsDep,
    range_header: RangeHeader = None,
):
    job = await get_job_for_download(job_id, request, jobs, token)
    return await _serve(job, path, storage, settings, range_header)


async def _serve(job: Job, path: str, storage, settings, range_header: str | None):
    """Only files of an output that completed (its folder is named after it, or, for a /process job's
    one file at the top of the job's folder, it lists the file), never outside the job."""
    parts = path.split("/")
    states = decode_states(job.outputs)
    state = next((s for s in states if s.name == parts[0] and len(parts) > 1), None) or next(
        (s for s in states if len(parts) == 1 and any(f.path == path for f in s.files)), None
    )
    if any(p in ("", ".", "..") or "\\" in p for p in parts) or state is None:
        raise HTTPException(404, detail=f"job {job.job_id} has no file {path!r}")
    if state.status != "completed":
        raise HTTPException(
            404, detail=f"output {state.name!r} is {state.status}; its files are served once it completed"
        )
    playlist = path.endswith((".m3u8", ".mpd"))  # served here, so the relative URIs inside resolve here too
    storage = job_storage(storage, settings, job.job_id, job.destination)  # delivered files are read there
    return await stream_stored(
        storage.location(output_key(settings, job.job_id, path)),
        storage,
        settings,
        disposition="inline",
        range_header=range_header,
        redirect=not playlist,
    )


async def _manifest(job: Job, storage, settings) -> list[dict]:
    if not job.has_outputs:  # a /process job stored before its record carried its output
        raise HTTPException(
            404, detail=f"job {job.job_id} was made by POST /process; it has one output, at /download/{job.job_id}"
        )
    if job.method_name is not None:  # a /process job: its one file is on the record (its folder keeps the seed's shape)
        return [f.model_dump() for s in decode_states(job.outputs) if s.status == "completed" for f in s.files]
    storage = job_storage(storage, settings, job.job_id, job.destination)
    try:
        stored = await storage.open_read(output_key(settings, job.job_id, FILES_MANIFEST))
    except ObjectNotFoundError:
        return []  # no output finished yet
    data = b"".join([chunk async for chunk in stored.chunks])
    return json.loads(data)["files"]


def _delivered(job: Job, path: str) -> str | None:
    """Where a file of the job was delivered, for a job with a destination."""
    return parse_destination(job.destination).location(job.job_id, path) if job.destination else None
