"""`GET /jobs/{id}/events`: a job's status and progress as Server-Sent Events.

The stream follows the job record, not an in-process signal: the job may be processed by a worker in
another process or on another machine, and the record (whatever store holds it) is the one place that
always knows. A `JobWatch` in each API process reads a watched job every SSE_POLL_INTERVAL_S — once
for all the clients watching that job, so a hundred open dashboards cost one store read per interval,
not a hundred — and every client gets an event whenever `version` moved, in order.

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
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from mediaflow.api.numbers import ascii_decimal
from mediaflow.jobs.model import Job
from mediaflow.jobs.schemas import JobStatusResponse
from mediaflow.logs import get_logger
from mediaflow.store import JobStore

log = get_logger("api")

HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # tell nginx-style proxies not to buffer the stream
}


def format_event(job: Job) -> str:
    data = JobStatusResponse.from_job(job).model_dump_json()
    return f"id: {job.version}\nevent: job\ndata: {data}\n\n"


@dataclass
class WatchedJob:
    """The latest read of one job, shared by every client following it."""

    job_id: str
    job: Job | None = None
    loaded: bool = False  # the first read is done (job None then means: not in the store)
    error: BaseException | None = None  # the store failed: followers end their streams
    subscribers: int = 0
    poller: asyncio.Task[None] | None = None  # set by JobWatch.follow as soon as it is made
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def stop_polling(self) -> None:
        if self.poller is not None:
            self.poller.cancel()

    def publish(self, job: Job | None = None, error: BaseException | None = None) -> None:
        self.job, self.error, self.loaded = job, error, True
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()  # wakes everyone waiting on the previous generation

    async def wait_for_change(self, timeout: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)


class JobWatch:
    """One store poller per watched job in this process, started by the first follower and stopped
    when the last one leaves."""

    def __init__(self, store: JobStore, poll_interval_s: float) -> None:
        self._store = store
        self._interval = poll_interval_s
        self._watched: dict[str, WatchedJob] = {}

    @property
    def watched_jobs(self) -> int:
        return len(self._watched)

    @contextlib.asynccontextmanager
    async def follow(self, job_id: str) -> AsyncIterator[WatchedJob]:
        watched = self._watched.get(job_id)
        if watched is None:
            watched = self._watched[job_id] = WatchedJob(job_id)
            watched.poller = asyncio.create_task(self._poll(watched))
        watched.subscribers += 1
        try:
            yield watched
        finally:
            watched.subscribers -= 1
            if watched.subscribers == 0:
                del self._watched[job_id]
                watched.stop_polling()

    async def _poll(self, watched: WatchedJob) -> None:
        last_version: int | None = None
        while True:
            try:
                job = await self._store.get(watched.job_id)
            except Exception as exc:  # followers end their streams; a reconnect starts afresh
                log.warning("sse.store_error", job_id=watched.job_id, error=str(exc))
                watched.publish(error=exc)
                return
            version = job.version if job is not None else None
            if not watched.loaded or version != last_version:
                watched.publish(job)
                last_version = version
            if job is None or job.status.is_final:
                return  # nothing more will change
            await asyncio.sleep(self._interval)

    async def close(self) -> None:
        for watched in list(self._watched.values()):
            watched.stop_polling()


async def job_event_frames(
    watch: JobWatch,
    job_id: str,
    *,
    keepalive_s: float,
    max_stream_s: float,
    last_event_id: str | None = None,
) -> AsyncIterator[str]:
    """Yield SSE frames for `job_id` until it reaches a final status (or the stream's time is up)."""
    sent_version = ascii_decimal(last_event_id)  # None (send the current state) unless a plain number
    started = last_write = time.monotonic()
    async with watch.follow(job_id) as watched:
        while True:
            if watched.loaded:
                if watched.error is not None:
                    raise watched.error
                job = watched.job
                if job is None:  # removed from the store while watched: nothing more will come
                    return
                if job.version != sent_version:
                    yield format_event(job)
                    sent_version, last_write = job.version, time.monotonic()
                if job.status.is_final:  # also when a reconnecting client already has the final event
                    return
            now = time.monotonic()
            if now - last_write >= keepalive_s:
                yield ": keep-alive\n\n"
                last_write = now
            if now - started >= max_stream_s:
                return
            wake_in = min(keepalive_s - (now - last_write), max_stream_s - (now - started))
            await watched.wait_for_change(max(wake_in, 0.01))
