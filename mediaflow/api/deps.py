"""The API's dependencies as `Annotated` aliases, so route signatures stay short (`store: StoreDep`):
the backends the lifespan opened, the settings, and the job a request may see (its owner checked)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Query, Request

from mediaflow.api import download_links
from mediaflow.api.auth import authenticate, authenticated_owner
from mediaflow.jobs.events import JobEvents
from mediaflow.jobs.model import Job
from mediaflow.jobs.service import JobService
from mediaflow.logs import bind_job_id
from mediaflow.queue import JobQueue
from mediaflow.settings import Settings
from mediaflow.storage import Storage
from mediaflow.store import JobStore


async def _store(request: Request) -> JobStore:
    return request.app.state.store


async def _queue(request: Request) -> JobQueue:
    return request.app.state.queue


async def _storage(request: Request) -> Storage:
    return request.app.state.storage


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _events(request: Request) -> JobEvents:
    return request.app.state.events


async def _jobs(request: Request) -> JobService:
    return request.app.state.jobs


StoreDep = Annotated[JobStore, Depends(_store)]
QueueDep = Annotated[JobQueue, Depends(_queue)]
StorageDep = Annotated[Storage, Depends(_storage)]
SettingsDep = Annotated[Settings, Depends(_settings)]
EventsDep = Annotated[JobEvents, Depends(_events)]
JobsDep = Annotated[JobService, Depends(_jobs)]


OwnerDep = Annotated[str | None, Depends(authenticated_owner)]
# A page of a listing (GET /process, GET /jobs): at most 100 jobs, newest first.
PageLimit = Annotated[int, Query(ge=1, le=100)]
PageSkip = Annotated[int, Query(ge=0, le=100_000)]
# `Range: bytes=first-last` on downloads, so a video player can seek (one range; others are ignored).
RangeHeader = Annotated[str | None, Header(alias="Range", max_length=200)]


async def get_job_or_404(job_id: str, jobs: JobsDep, owner: OwnerDep) -> Job:
    """The job, if it exists and belongs to the caller's key (another key's job is a 404 too)."""
    job = await jobs.find(job_id, owner=owner)
    if job is None:
        # The same words whether the job is missing or another key's: a 404 tells no one what exists.
        why = (
            " for this API key (a key sees only the jobs it made; jobs made before API_KEYS was set belong to no key)"
            if owner is not None
            else ""
        )
        raise HTTPException(404, detail=f"no job with id {job_id!r}{why}")
    bind_job_id(job.job_id)
    return job


JobDep = Annotated[Job, Depends(get_job_or_404)]


async def get_job_for_download(
    job_id: str,
    request: Request,
    jobs: JobsDep,
    token: Annotated[
        str | None, Query(max_length=100, description="A signed link's token (GET /jobs/{id}/download-url)")
    ] = None,
) -> Job:
    """The job, for a request with a valid signed-link token or else with the usual API key."""
    if token is None:
        return await get_job_or_404(job_id, jobs, authenticate(request))
    job = await jobs.find(job_id, owner=None)  # the token, made for this job, stands in for the key
    if job is None or not download_links.token_is_valid(request.app.state.settings, job, token):
        raise HTTPException(
            403, detail="this download link is invalid or has expired; ask GET /jobs/{id}/download-url for a new one"
        )
    bind_job_id(job.job_id)  # the access log names the job a signed link opened, as for a key's request
    return job
