"""The CLI's side of POST /jobs: submitting a template or a spec file, and downloading every file of a
job's outputs into a folder (`download JOB --all -o DIR`).

File paths come from the server: each is checked to stay inside the target folder (no absolute path,
no "..", no control characters) before anything is written.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from mediaflow.client.api import EXIT_SERVER, EXIT_USAGE, Api, CliError
from mediaflow.client.terminal import printable
from mediaflow.client.transfer import save_stream

_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


def read_spec(path: Path) -> dict[str, Any]:
    """A job spec file: `{"outputs": [...]}` (with optional "template", "callback_url", ...) or a bare list."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}", EXIT_USAGE) from None
    except ValueError as exc:
        raise CliError(f"{path} is not JSON: {exc}", EXIT_USAGE) from None
    if isinstance(data, list):
        data = {"outputs": data}
    if not isinstance(data, dict) or not ({"outputs", "template"} & set(data)):
        raise CliError(
            f'{path} must hold {{"outputs": [...]}} or {{"template": NAME}} (or a list of outputs)', EXIT_USAGE
        )
    return data


def check_template(api: Api, name: str) -> None:
    """Refuse an unknown template before the file is uploaded (the job would be refused after it)."""
    if not _PART.fullmatch(name):
        raise CliError(f"--template {printable(name)!r} is not a template name (letters, digits, '-', '_')", EXIT_USAGE)
    with api.stream("GET", f"/templates/{name}", passthrough=(404,)) as response:
        response.read()
    if response.status_code == 404:
        listing = api.json("GET", "/templates").get("templates") or []
        names = ", ".join(printable(str(t.get("name"))) for t in listing if isinstance(t, dict))
        raise CliError(f"unknown template {printable(name)!r}; choose one of: {names}", EXIT_USAGE)


def submit_outputs_job(api: Api, source: str, body: dict[str, Any], idempotency_key: str | None) -> str:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    job_id = api.json("POST", "/jobs", json={**body, "source": source}, headers=headers).get("job_id")
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise CliError(f"{api.server}/jobs answered without a usable job id: is it a MediaFlow server?", EXIT_SERVER)
    return job_id


def safe_relative_path(path: object) -> Path:
    parts = path.split("/") if isinstance(path, str) else []
    if not parts or not all(_PART.fullmatch(part) for part in parts):
        raise CliError(
            f"the server named a file {printable(str(path))!r}, which is not a plain relative path; "
            "nothing was written for it",
            EXIT_SERVER,
        )
    return Path(*parts)


def download_all(api: Api, job_id: str, directory: Path | None) -> Path:
    """Every file of the job's finished outputs under `directory` (default ./<job_id>), as the server
    lays them out (`stream/720p/index.m3u8`), so playlists keep working from disk."""
    listing = api.json("GET", f"/jobs/{job_id}/files")
    files = listing.get("files") if isinstance(listing.get("files"), list) else []
    if not files:
        raise CliError(f"job {job_id} has no finished output files yet (`mediaflow status {job_id}`)", EXIT_USAGE)
    target = directory or Path(job_id)
    for number, file in enumerate(files, 1):
        relative = safe_relative_path(file.get("path") if isinstance(file, dict) else None)
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        with api.download(f"/jobs/{job_id}/files/{relative.as_posix()}") as response:
            save_stream(response.iter_bytes(), destination)
        print(f"[{number}/{len(files)}] {printable(relative.as_posix())}", file=sys.stderr)
    return target
