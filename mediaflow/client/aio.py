"""`AsyncMediaFlow`: the Python client for asyncio, method for method the same as `MediaFlow` (sdk.py).

    async with AsyncMediaFlow("http://127.0.0.1:8000") as mf:
        job = await mf.submit("media/sample.mp4", method="compress")
        async for state in mf.follow(job.job_id):
            print(state.progress, state.phase)
        print(await mf.download(job.job_id, "small.mp4"))

The same error mapping, SSE parsing, file-name rules and answers as the synchronous client; only the
transport is httpx.AsyncClient. (Local file reads and writes are plain blocking calls in small chunks.)
"""

from __future__ import annotations

import asyncio
import builtins
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from mediaflow.client.api import (
    DEFAULT_TIMEOUT,
    EVENTS_TIMEOUT,
    EXIT_SERVER,
    UPLOAD_TIMEOUT,
    MediaFlowError,
    error_for_response,
    error_for_transport,
    json_object,
    normalize_server_url,
    request_headers,
    response_detail,
)
from mediaflow.client.follow import (
    EVENTS_PASSTHROUGH,
    FINAL_STATUSES,
    POLL_INTERVAL_S,
    EventStreamUnavailable,
    SseDecoder,
    is_event_stream,
    job_ended_error,
    job_of_event,
)
from mediaflow.client.models import Job, Method, Template, Upload
from mediaflow.client.sdk import USER_AGENT, is_local_file, jobs_body, list_params, process_body, server_and_key
from mediaflow.client.transfer import (
    ProgressCallback,
    ReadProgress,
    download_target,
    filename_from_disposition,
    replacing,
)

__all__ = ["AsyncMediaFlow"]


class AsyncMediaFlow:
    """One MediaFlow server, for asyncio. Use as an async context manager, or await aclose()."""

    def __init__(self, server: str | None = None, api_key: str | None = None) -> None:
        server, api_key = server_and_key(server, api_key)
        self.server = normalize_server_url(server)
        self._http = httpx.AsyncClient(
            base_url=self.server, headers=request_headers(api_key, USER_AGENT), timeout=DEFAULT_TIMEOUT
        )

    async def __aenter__(self) -> AsyncMediaFlow:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- transport (errors as MediaFlowError, like Api) ---------------------------------------------

    @asynccontextmanager
    async def _stream(
        self, method: str, path: str, *, passthrough: tuple[int, ...] = (), **kwargs: Any
    ) -> AsyncIterator[httpx.Response]:
        try:
            async with self._http.stream(method, path, **kwargs) as response:
                if response.is_error and response.status_code not in passthrough:
                    await response.aread()
                    raise error_for_response(response, self.server)
                yield response
        except httpx.TransportError as exc:
            raise error_for_transport(exc, self.server) from None

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict:
        async with self._stream(method, path, **kwargs) as response:
            await response.aread()
        return json_object(response, self.server, path)

    # --- jobs ---------------------------------------------------------------------------------------

    async def upload(self, path: str | os.PathLike, on_progress: ProgressCallback | None = None) -> Upload:
        path = Path(path)
        size = path.stat().st_size
        with path.open("rb") as file:  # noqa: ASYNC230  (opening is cheap; reads and writes go through threads or are small)
            body = ReadProgress(file, lambda position: on_progress(position, size)) if on_progress else file
            answer = await self._json("POST", "/upload", files={"file": (path.name, body)}, timeout=UPLOAD_TIMEOUT)
        if not isinstance(answer.get("source"), str):
            raise MediaFlowError(
                f"{self.server}/upload answered without a source: is it a MediaFlow server?", EXIT_SERVER
            )
        return Upload(
            source=answer["source"], filename=str(answer.get("filename", "")), size=int(answer.get("size", 0))
        )

    async def submit(
        self,
        source: str | os.PathLike,
        method: str,
        output_format: str | None = None,
        *,
        callback_url: str | None = None,
        callback_progress: bool = False,
        destination: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        if is_local_file(source):
            source = (await self.upload(source)).source
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = process_body(str(source), method, output_format, callback_url, callback_progress, destination)
        return await self.status((await self._json("POST", "/process", json=body, headers=headers))["job_id"])

    async def create_job(
        self,
        source: str | os.PathLike,
        *,
        template: str | None = None,
        outputs: list[dict] | None = None,
        callback_url: str | None = None,
        destination: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        if is_local_file(source):
            source = (await self.upload(source)).source
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = jobs_body(str(source), template, outputs, callback_url, destination)
        return await self.status((await self._json("POST", "/jobs", json=body, headers=headers))["job_id"])

    async def templates(self) -> list[Template]:
        return [Template.from_json(t) for t in (await self._json("GET", "/templates")).get("templates") or []]

    async def status(self, job_id: str) -> Job:
        return Job.from_json(await self._json("GET", f"/status/{job_id}"))

    async def list(self, status: str | None = None, limit: int = 10, skip: int = 0) -> list[Job]:
        body = await self._json("GET", "/process", params=list_params(status, limit, skip))
        return [Job.from_json(job) for job in body.get("jobs") or []]

    async def follow(self, job_id: str) -> AsyncIterator[Job]:
        """Each change of the job until it ends (Server-Sent Events, else polling); the last is final."""
        try:
            while True:
                last = None
                async for last in self._event_updates(job_id):
                    yield Job.from_json(last)
                if last is not None and last.get("status") in FINAL_STATUSES:
                    return
                await asyncio.sleep(POLL_INTERVAL_S)  # the stream hit its time limit
        except EventStreamUnavailable:
            while True:
                job = await self.status(job_id)
                yield job
                if job.done:
                    return
                await asyncio.sleep(POLL_INTERVAL_S)

    async def _event_updates(self, job_id: str) -> AsyncIterator[dict]:
        async with self._stream(
            "GET",
            f"/jobs/{job_id}/events",
            headers={"Accept": "text/event-stream"},
            timeout=EVENTS_TIMEOUT,
            passthrough=EVENTS_PASSTHROUGH,
        ) as response:
            if not is_event_stream(response):
                raise EventStreamUnavailable(f"answered {response.status_code}")
            decoder, received = SseDecoder(), 0
            try:
                async for line in response.aiter_lines():
                    event = decoder.feed(line)
                    if event is None or (job := job_of_event(event)) is None:
                        continue
                    received += 1
                    yield job
                    if job.get("status") in FINAL_STATUSES:
                        return
            except (httpx.TransportError, ValueError) as exc:
                raise EventStreamUnavailable(str(exc)) from None
        if not received:
            raise EventStreamUnavailable("the stream ended without an event")

    async def wait(self, job_id: str, on_update: Callable[[Job], None] | None = None, *, check: bool = True) -> Job:
        job = None
        async for job in self.follow(job_id):
            if on_update is not None:
                on_update(job)
        if job is None:
            raise MediaFlowError(f"no state of job {job_id} was received")
        if check and not job.succeeded:
            raise job_ended_error(job.raw)
        return job

    async def download(
        self, job_id: str, to: str | os.PathLike | None = None, on_progress: ProgressCallback | None = None
    ) -> Path:
        try:
            async with self._download_response(f"/download/{job_id}") as response:
                name = filename_from_disposition(response.headers.get("content-disposition"))
                target = download_target(Path(to) if to is not None else None, name, job_id)
                length = response.headers.get("content-length", "")
                total, done = (int(length) if length.isdigit() else None), 0
                with replacing(target) as out:
                    async for chunk in response.aiter_bytes():
                        out.write(chunk)
                        done += len(chunk)
                        if on_progress is not None:
                            on_progress(done, total)
        except MediaFlowError as error:
            if error.http_status == 409:  # not completed: say why in the job's own terms
                job = await self.status(job_id)
                raise job_ended_error(job.raw) if job.status in ("failed", "canceled") else error from None
            raise
        return target

    @asynccontextmanager
    async def _download_response(self, path: str) -> AsyncIterator[httpx.Response]:
        """Follows a redirect to presigned storage without the API key (it is for MediaFlow only)."""
        async with self._stream("GET", path) as response:
            if not response.is_redirect:
                yield response
                return
            location = urljoin(str(response.url), response.headers.get("location", ""))
        try:
            async with (
                httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, follow_redirects=True) as plain,
                plain.stream("GET", location) as redirected,
            ):
                if redirected.is_error:
                    await redirected.aread()
                    raise MediaFlowError(
                        f"the storage the server redirected to answered {redirected.status_code}: "
                        f"{response_detail(redirected)}",
                        EXIT_SERVER,
                    )
                yield redirected
        except httpx.TransportError as exc:
            raise error_for_transport(exc, location.split("?", 1)[0]) from None

    async def cancel(self, job_id: str) -> Job:
        return Job.from_json(await self._json("POST", f"/jobs/{job_id}/cancel"))

    async def retry(self, job_id: str) -> Job:
        return Job.from_json(await self._json("POST", f"/jobs/{job_id}/retry"))

    async def delete(self, job_id: str) -> None:
        async with self._stream("DELETE", f"/jobs/{job_id}"):
            pass

    async def log(self, job_id: str) -> str:
        async with self._stream("GET", f"/jobs/{job_id}/log") as response:
            return (await response.aread()).decode("utf-8", "replace")

    async def methods(self) -> builtins.list[Method]:  # `list` is the method above, in this class
        return [Method.from_json(method) for method in (await self._json("GET", "/methods")).get("methods") or []]
