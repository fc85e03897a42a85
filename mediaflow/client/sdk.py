"""`MediaFlow`: the typed Python client (synchronous; `AsyncMediaFlow` in aio.py is the same for asyncio).

    from mediaflow.client import MediaFlow

    with MediaFlow("http://127.0.0.1:8000") as mf:
        job = mf.submit("media/sample.mp4", method="compress")   # a local file is uploaded first
        job = mf.wait(job.job_id)                                 # follows its progress (SSE)
        print(mf.download(job.job_id, "small.mp4"))

Every failure is a `MediaFlowError` with a message for a person (`JobFailedError` when the job failed
or was canceled, with `.job`); `http_status` says what the server answered. The command line uses the
same pieces (api.py, follow.py, transfer.py), with progress lines on top.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mediaflow.client.api import Api, JobFailedError, MediaFlowError
from mediaflow.client.follow import job_ended_error, job_updates
from mediaflow.client.models import Job, Method, Template, Upload
from mediaflow.client.transfer import ProgressCallback, save_output, send_file

DEFAULT_SERVER = "http://127.0.0.1:8000"
USER_AGENT = "mediaflow-python"

__all__ = ["MediaFlow", "MediaFlowError", "JobFailedError", "Job", "Upload", "Method", "Template"]


def server_and_key(server: str | None, api_key: str | None) -> tuple[str, str | None]:
    """The arguments, else MEDIAFLOW_URL / MEDIAFLOW_API_KEY, else the local default server."""
    return (
        server or os.environ.get("MEDIAFLOW_URL") or DEFAULT_SERVER,
        api_key if api_key is not None else os.environ.get("MEDIAFLOW_API_KEY") or None,
    )


def is_local_file(source: str | os.PathLike) -> bool:
    """A Path, or a string naming a file on this machine (not a URI): submit() uploads it."""
    if isinstance(source, os.PathLike):
        return True
    return "://" not in source and Path(source).is_file()


def process_body(
    source: str,
    method: str,
    output_format: str | None,
    callback_url: str | None,
    callback_progress: bool,
    destination: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"source": source, "method_name": method}
    if destination:
        body["destination"] = destination
    if output_format:
        body["output_format"] = output_format
    if callback_url:
        body["callback_url"] = callback_url
        body["callback_progress"] = callback_progress
    return body


def jobs_body(
    source: str,
    template: str | None,
    outputs: list[dict] | None,
    callback_url: str | None,
    destination: str | None = None,
) -> dict[str, Any]:
    if (template is None) == (outputs is None):
        raise MediaFlowError("create_job needs either template= (a name from templates()) or outputs= (a list)")
    body: dict[str, Any] = {"source": source, **({"template": template} if template else {"outputs": outputs})}
    if callback_url:
        body["callback_url"] = callback_url
    if destination:
        body["destination"] = destination
    return body


def list_params(status: str | None, limit: int, skip: int) -> dict[str, Any]:
    return {"limit": limit, "skip": skip, **({"status": status} if status else {})}


class MediaFlow:
    """One MediaFlow server. Use as a context manager, or call close()."""

    def __init__(self, server: str | None = None, api_key: str | None = None) -> None:
        """`server` (default MEDIAFLOW_URL, else http://127.0.0.1:8000) and `api_key` (default
        MEDIAFLOW_API_KEY), sent as X-API-Key when the server has API_KEYS."""
        self._api = Api(*server_and_key(server, api_key), user_agent=USER_AGENT)
        self.server = self._api.server

    def __enter__(self) -> MediaFlow:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._api.http.close()

    # --- jobs ---------------------------------------------------------------------------------------

    def upload(self, path: str | os.PathLike, on_progress: ProgressCallback | None = None) -> Upload:
        """Stream a local file to the server (never whole in memory); its `source` feeds submit()."""
        body = send_file(self._api, Path(path), on_progress)
        return Upload(source=body["source"], filename=str(body.get("filename", "")), size=int(body.get("size", 0)))

    def submit(
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
        """Queue a job. `source`: a local file (uploaded first), or what the server reads itself
        (an http(s):// URL, `upload://…`, `s3://…`, a path under its LOCAL_SOURCE_ROOTS). `destination`:
        `s3://bucket/prefix/` to have the files delivered there (docs/sources.md)."""
        if is_local_file(source):
            source = self.upload(source).source
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = process_body(str(source), method, output_format, callback_url, callback_progress, destination)
        return self.status(self._api.json("POST", "/process", json=body, headers=headers)["job_id"])

    def create_job(
        self,
        source: str | os.PathLike,
        *,
        template: str | None = None,
        outputs: list[dict] | None = None,
        callback_url: str | None = None,
        destination: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Queue a job with many outputs (POST /jobs): a template's, or `outputs` (docs/outputs.md)."""
        if is_local_file(source):
            source = self.upload(source).source
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body = jobs_body(str(source), template, outputs, callback_url, destination)
        return self.status(self._api.json("POST", "/jobs", json=body, headers=headers)["job_id"])

    def templates(self) -> list[Template]:
        """The built-in templates, then the ones saved with this API key."""
        return [Template.from_json(t) for t in self._api.json("GET", "/templates").get("templates") or []]

    def status(self, job_id: str) -> Job:
        return Job.from_json(self._api.json("GET", f"/status/{job_id}"))

    def list(self, status: str | None = None, limit: int = 10, skip: int = 0) -> list[Job]:
        """Jobs newest first (this API key's own when the server has API_KEYS)."""
        body = self._api.json("GET", "/process", params=list_params(status, limit, skip))
        return [Job.from_json(job) for job in body.get("jobs") or []]

    def follow(self, job_id: str) -> Iterator[Job]:
        """Each change of the job until it ends (Server-Sent Events, else polling); the last is final."""
        for state in job_updates(self._api, job_id):
            yield Job.from_json(state)

    def wait(self, job_id: str, on_update: Callable[[Job], None] | None = None, *, check: bool = True) -> Job:
        """The job's final state. With `check`, a failed or canceled job raises JobFailedError."""
        job = None
        for job in self.follow(job_id):
            if on_update is not None:
                on_update(job)
        if job is None:  # job_updates always yields the current state first
            raise MediaFlowError(f"no state of job {job_id} was received")
        if check and not job.succeeded:
            raise job_ended_error(job.raw)
        return job

    def download(
        self, job_id: str, to: str | os.PathLike | None = None, on_progress: ProgressCallback | None = None
    ) -> Path:
        """Save a completed job's output: to `to` (a file, or a directory), else under the server's
        file name in the current directory (never over an existing file). Returns the path."""
        return save_output(self._api, job_id, Path(to) if to is not None else None, on_progress)

    def cancel(self, job_id: str) -> Job:
        return Job.from_json(self._api.json("POST", f"/jobs/{job_id}/cancel"))

    def retry(self, job_id: str) -> Job:
        return Job.from_json(self._api.json("POST", f"/jobs/{job_id}/retry"))

    def delete(self, job_id: str) -> None:
        """Remove a finished job with its output and log."""
        with self._api.stream("DELETE", f"/jobs/{job_id}"):
            pass

    def log(self, job_id: str) -> str:
        """The ffmpeg log of the job's last run."""
        with self._api.stream("GET", f"/jobs/{job_id}/log") as response:
            return response.read().decode("utf-8", "replace")

    def methods(self) -> builtins.list[Method]:  # `list` is the method above, in this class
        return [Method.from_json(method) for method in self._api.json("GET", "/methods").get("methods") or []]
