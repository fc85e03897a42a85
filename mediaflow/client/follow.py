"""Following a job from the `mediaflow` client until it ends: the Server-Sent Events of
`/jobs/{id}/events` (parsed here: httpx has no SSE parser), else polling `/status/{id}`, with a
progress line on stderr. A job that ends failed or canceled becomes a `CliError` (exit code 1).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import httpx

from mediaflow.client.api import EVENTS_TIMEOUT, EXIT_JOB_FAILED, Api, CliError
from mediaflow.client.terminal import ProgressLine, job_milestone, job_progress_text, printable

FINAL_STATUSES = frozenset({"completed", "failed", "canceled"})
POLL_INTERVAL_S = 0.5


# --- Server-Sent Events ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None = None


def parse_sse(lines: Iterable[str]) -> Iterator[ServerSentEvent]:
    """Events from the lines of a `text/event-stream` body (the WHATWG parsing rules, minus `retry`).

    A blank line ends an event; `data:` lines accumulate (joined by newlines); lines starting with
    `:` are comments (keep-alives); one space after the colon is dropped; an event without data is
    not dispatched, and an unterminated event at the end of the stream is dropped (it may be cut short).
    """
    event_type, data, last_id = "", [], None
    for raw_line in lines:
        line = raw_line.rstrip("\r\n")
        if not line:
            if data:
                yield ServerSentEvent(event=event_type or "message", data="\n".join(data), id=last_id)
            event_type, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event_type = value
        elif field == "id" and "\0" not in value:
            last_id = value


def jobs_in_sse(lines: Iterable[str]) -> Iterator[dict]:
    """The job states carried by a job event stream (`event: job`, data = the /status JSON)."""
    for event in parse_sse(lines):
        if event.event != "job":
            continue
        job = json.loads(event.data)
        if not isinstance(job, dict):
            raise ValueError("a job event's data is not a JSON object")
        yield job


# --- following a job -------------------------------------------------------------------------------


class EventStreamUnavailable(Exception):
    """The server has no job event stream (an older server), or the stream broke: poll instead."""


def follow_events(api: Api, job_id: str, on_update: Callable[[dict], None]) -> dict | None:
    """Follow a job over Server-Sent Events. Returns its final state, or None when the server ended
    the stream before the job ended (streams have a time limit): follow it again."""
    # 404/405: a server from before event streams; 5xx: a broken stream must not end a wait polling can do.
    with api.stream("GET", f"/jobs/{job_id}/events", headers={"Accept": "text/event-stream"},
                    timeout=EVENTS_TIMEOUT, passthrough=(404, 405, 500, 501, 502, 503, 504)) as response:
        content_type = response.headers.get("content-type", "")
        if response.is_error or not content_type.startswith("text/event-stream"):
            raise EventStreamUnavailable(f"answered {response.status_code} {content_type}")
        received = 0
        try:
            for job in jobs_in_sse(response.iter_lines()):
                received += 1
                on_update(job)
                if job.get("status") in FINAL_STATUSES:
                    return job
        except (httpx.TransportError, ValueError) as exc:  # cut off, timed out, or not the JSON we expect
            raise EventStreamUnavailable(str(exc)) from None
    if not received:  # every stream starts with the current state: one without is not working
        raise EventStreamUnavailable("the stream ended without an event")
    return None


def poll_until_final(api: Api, job_id: str, on_update: Callable[[dict], None]) -> dict:
    while True:
        job = api.json("GET", f"/status/{job_id}")
        on_update(job)
        if job.get("status") in FINAL_STATUSES:
            return job
        time.sleep(POLL_INTERVAL_S)


def wait_for_job(api: Api, job_id: str) -> dict:
    """Show the job's progress until it ends; returns its final state."""
    line = ProgressLine()

    def on_update(job: dict) -> None:
        line.show(job_progress_text(job), job_milestone(job))

    try:
        while (final := follow_events(api, job_id, on_update)) is None:
            time.sleep(POLL_INTERVAL_S)  # the stream hit its time limit; never reconnect in a tight loop
        return final
    except EventStreamUnavailable:
        return poll_until_final(api, job_id, on_update)
    finally:
        line.finish()


def job_ended_error(job: dict) -> CliError:
    job_id = printable(str(job.get("job_id", "?")))
    if job.get("status") == "canceled":
        return CliError(f"job {job_id} was canceled", EXIT_JOB_FAILED)
    reason = printable(str(job.get("error") or "no reason given"))
    return CliError(f"job {job_id} failed: {reason}", EXIT_JOB_FAILED)
