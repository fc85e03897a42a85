"""`GET /jobs/{id}/events`: a job's status and progress as Server-Sent Events.

The stream follows the job record, not an in-process signal: the job may be processed by a worker in
another process or on another machine, and the record (whatever store holds it) is the one place that
always knows. The API reads it every SSE_POLL_INTERVAL_S and sends an event whenever `version` moved,
so every status change and every progress write reaches the client in order.

Wire format (one event per change; the first is the current state):

    id: <job version>
    event: job
    data: <the GET /status/{id} JSON>

The server closes the stream after the event with a final status (completed, failed, canceled). A
comment line (`: keep-alive`) goes out every SSE_KEEPALIVE_S so proxies keep an idle stream open. A
stream also ends after SSE_MAX_STREAM_S, so a long encode never holds a connection (or a server
shutdown) indefinitely; EventSource reconnects by itself and sends Last-Event-ID, and an unchanged
version is then not sent again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from db import JobStore
from schema import Job, JobStatusResponse

HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # tell nginx-style proxies not to buffer the stream
}


def format_event(job: Job) -> str:
    data = JobStatusResponse.from_job(job).model_dump_json()
    return f"id: {job.version}\nevent: job\ndata: {data}\n\n"


async def job_events(
    store: JobStore,
    job_id: str,
    *,
    poll_interval_s: float,
    keepalive_s: float,
    max_stream_s: float,
    last_event_id: str | None = None,
) -> AsyncIterator[str]:
    """Yield SSE frames for `job_id` until it reaches a final status (or the stream's time is up)."""
    sent_version = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    started = last_write = time.monotonic()
    while True:
        job = await store.get(job_id)
        now = time.monotonic()
        if job is None:  # removed from the store while watched: nothing more will come
            return
        if job.version != sent_version:
            yield format_event(job)
            sent_version, last_write = job.version, now
        if job.status.is_final:  # also when a reconnecting client already has the final event
            return
        if now - last_write >= keepalive_s:
            yield ": keep-alive\n\n"
            last_write = now
        if now - started >= max_stream_s:
            return
        await asyncio.sleep(poll_interval_s)
