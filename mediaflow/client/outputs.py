"""The CLI's side of POST /jobs: submitting a template or a spec file, and downloading every file of a
job's outputs into a folder (`download JOB --all -o DIR`) or one of them (`download JOB --file NAME`).

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
from mediaflow.client.transfer import save_stream, unused_path

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


def _job_files(api: Api, job_id: str) -> list[str]:
    files = api.json("GET", f"/jobs/{job_id}/files").get("files")
    if not isinstance(files, list):
        return []
    return [f["path"] for f in files if isinstance(f, dict) and isinstance(f.get("path"), str)]


def pick_file(paths: list[str], wanted: str, job_id: str) -> str:
    """`wanted` is a file's path ("stream/master.m3u8") or an output's name with a single file ("web")."""
    if wanted in paths:
        return wanted
    inside = [p for p in paths if p.startswith(wanted.rstrip("/") + "/")]
    if len(inside) == 1:
        return inside[0]
    shown = ", ".join(printable(p) for p in (inside or paths)[:8]) + (", …" if len(inside or paths) > 8 else "")
    if inside:
        raise CliError(
            f"output {printable(wanted)!r} of job {job_id} has {len(inside)} files ({shown}): name one with "
            f"--file PATH, or save them all with --all",
            EXIT_USAGE,
        )
    raise CliError(
        f"job {job_id} has no output or file {printable(wanted)!r}; its files: {shown or 'none yet'}", EXIT_USAGE
    )


def download_one(api: Api, job_id: str, wanted: str, output: Path | None) -> Path:
    """One file of a job's outputs, to `output` (a file, or a folder for its own name) or here. A file
    name given with -o keeps the file's type: a GIF is never saved as x.mp4."""
    path = safe_relative_path(pick_file(_job_files(api, job_id), wanted, job_id))
    if output is None or output.is_dir():
        target = unused_path((output or Path()) / path.name)
    elif output.suffix.lower() != path.suffix.lower():
        raise CliError(
            f"{printable(path.as_posix())} is a {path.suffix or 'suffix-less'} file; -o {printable(str(output))} would "
            f"give it another type's name: use -o {printable(output.with_suffix(path.suffix).name)}, or a folder",
            EXIT_USAGE,
        )
    else:
        target = output
    with api.download(f"/jobs/{job_id}/files/{path.as_posix()}") as response:
        save_stream(response.iter_bytes(), target)
    return target
