"""Following a job from the `mediaflow` client until it ends: the Server-Sent Events of
`/jobs/{id}/events` (parsed here: httpx has no SSE parser), else polling `/status/{id}`, with a
progress line on stderr for the CLI, or as an iterator of states (`job_updates`) for the Python client.
A job that ends failed or canceled becomes a `JobFailedError` (exit code 1).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import httpx

from mediaflow.client.api import EVENTS_TIMEOUT, Api, JobFailedError
from mediaflow.client.terminal import ProgressLine, job_milestone, job_progress_text, printable

FINAL_STATUSES = frozenset({"completed", "failed", "canceled"})
POLL_INTERVAL_S = 0.5


# --- Server-Sent Events ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None = None


class SseDecoder:
    """Server-Sent Events from a `text/event-stream` body fed line by line (the WHATWG parsing rules,
    minus `retry`), for sync and async readers alike.

    A blank line ends an event; `data:` lines accumulate (joined by newlines); lines starting with
    `:` are comments (keep-alives); one space after the colon is dropped; an event without data is
    not dispatched, and an unterminated event at the end of the stream is dropped (it may be cut short).
    """

    def __init__(self) -> None:
        self._type = ""
        self._data: list[str] = []
        self._last_id: str | None = None

    def feed(self, raw_line: str) -> ServerSentEvent | None:
        """The event this line completes, if any."""
        line = raw_line.rstrip("\r\n")
        if not line:
            event = None
            if self._data:
                event = ServerSentEvent(event=self._type or "message", data="\n".join(self._data), id=self._last_id)
            self._type, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._type = value
        elif field == "id" and "\0" not in value:
            self._last_id = value
        return None


def parse_sse(lines: Iterable[str]) -> Iterator[ServerSentEvent]:
    decoder = SseDecoder()
    for line in lines:
        if (event := decoder.feed(line)) is not None:
            yield event


def job_of_event(event: ServerSentEvent) -> dict | None:
    """The job state an event of a job stream carries (`event: job`, data = the /status JSON); None
    for other events. ValueError when the data is not a JSON object."""
    if event.event != "job":
        return None
    job = json.loads(event.data)
    if not isinstance(job, dict):
        raise ValueError("a job event's data is not a JSON object")
    return job


def jobs_in_sse(lines: Iterable[str]) -> Iterator[dict]:
    """The job states carried by a job event stream."""
    for event in parse_sse(lines):
        if (job := job_of_event(event)) is not None:
            yield job


# --- following a job -------------------------------------------------------------------------------


class EventStreamUnavailable(Exception):
    """The server has no job event stream (an older server), or the stream broke: poll instead."""


EVENTS_PASSTHROUGH = (404, 405, 500, 501, 502, 503, 504)  # 404/405: a server from before event streams;
# 5xx: a broken stream must not end a wait that polling can do.


def is_event_stream(response: httpx.Response) -> bool:
    return not response.is_error and response.headers.get("content-type", "").startswith("text/event-stream")


def event_updates(api: Api, job_id: str) -> Iterator[dict]:
    """The job's states over Server-Sent Events until it ends, or until the server ends the stream
    first (streams have a time limit: follow again). EventStreamUnavailable: poll instead."""
    with api.stream(
        "GET",
        f"/jobs/{job_id}/events",
        headers={"Accept": "text/event-stream"},
        timeout=EVENTS_TIMEOUT,
        passthrough=EVENTS_PASSTHROUGH,
    ) as response:
        if not is_event_stream(response):
            raise EventStreamUnavailable(f"answered {response.status_code} {response.headers.get('content-type', '')}")
        received = 0
        try:
            for job in jobs_in_sse(response.iter_lines()):
                received += 1
                yield job
                if job.get("status") in FINAL_STATUSES:
                    return
        except (httpx.TransportError, ValueError) as exc:  # cut off, timed out, or not the JSON we expect
            raise EventStreamUnavailable(str(exc)) from None
    if not received:  # every stream starts with the current state: one without is not working
        raise EventStreamUnavailable("the stream ended without an event")


def follow_events(api: Api, job_id: str, on_update: Callable[[dict], None]) -> dict | None:
    """Follow a job over Server-Sent Events. Returns its final state, or None when the server ended
    the stream before the job ended: follow it again."""
    last = None
    for last in event_updates(api, job_id):
        on_update(last)
    return last if last is not None and last.get("status") in FINAL_STATUSES else None


def poll_updates(api: Api, job_id: str) -> Iterator[dict]:
    while True:
        job = api.json("GET", f"/status/{job_id}")
        yield job
        if job.get("status") in FINAL_STATUSES:
            return
        time.sleep(POLL_INTERVAL_S)


def poll_until_final(api: Api, job_id: str, on_update: Callable[[dict], None]) -> dict:
    for job in poll_updates(api, job_id):
        on_update(job)
    return job


def job_updates(api: Api, job_id: str) -> Iterator[dict]:
    """Every state of the job until it ends, the last one final: Server-Sent Events (followed again
    when a stream hits its time limit), else polling /status."""
    try:
        while True:
            last = None
            for last in event_updates(api, job_id):
                yield last
            if last is not None and last.get("status") in FINAL_STATUSES:
                return
            time.sleep(POLL_INTERVAL_S)  # the stream hit its time limit; never reconnect in a tight loop
    except EventStreamUnavailable:
        yield from poll_updates(api, job_id)


def wait_for_job(api: Api, job_id: str) -> dict:
    """Show the job's progress until it ends; returns its final state."""
    line = ProgressLine()
    job: dict = {}
    try:
        for job in job_updates(api, job_id):
            line.show(job_progress_text(job), job_milestone(job))
        return job
    finally:
        line.finish()


def job_ended_error(job: dict) -> JobFailedError:
    job_id = printable(str(job.get("job_id", "?")))
    if job.get("status") == "canceled":
        return JobFailedError(f"job {job_id} was canceled", job)
    reason = printable(str(job.get("error") or "no reason given"))
    return JobFailedError(f"job {job_id} failed: {reason}", job)
