"""GET /jobs/{id}/events: a job's status and progress as Server-Sent Events until it ends."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Request
from fastapi.responses import StreamingResponse

from mediaflow.api.deps import JobDep, SettingsDep
from mediaflow.api.openapi import EVENT_STREAM_RESPONSE, Tag
from mediaflow.api.routes import authenticated_router
from mediaflow.api.sse import HEADERS as SSE_HEADERS
from mediaflow.api.sse import job_event_frames

router = authenticated_router(Tag.JOBS)


@router.get(
    "/jobs/{job_id}/events",
    summary="Follow a job's status and progress as Server-Sent Events until it ends",
    response_class=StreamingResponse,
    responses={**EVENT_STREAM_RESPONSE, 404: {"description": "Unknown job id"}},
)
async def job_events(
    job: JobDep,
    request: Request,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header(max_length=32)] = None,
) -> StreamingResponse:
    frames = job_event_frames(
        request.app.state.job_watch,
        job.job_id,
        keepalive_s=settings.sse.keepalive_s,
        max_stream_s=settings.sse.max_stream_s,
        last_event_id=last_event_id,
    )
    return StreamingResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS)
