"""Moving files for the `mediaflow` client: streaming a local file to `POST /upload`, and a job's
output from `/download/{id}` to disk, each with a progress line on stderr.

The file name a server proposes is untrusted: it is reduced to a plain name (never a path), and a
name the server chose never replaces a file the user already has. A download is written beside its
target and renamed into place, so an interrupted one leaves no partial file under the final name.
"""

from __future__ import annotations

import email.message
import email.utils
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import httpx

from mediaflow.client.api import EXIT_SERVER, EXIT_USAGE, UPLOAD_TIMEOUT, Api, CliError
from mediaflow.client.follow import job_ended_error
from mediaflow.client.terminal import ProgressLine, printable, transfer_text

# --- uploading -------------------------------------------------------------------------------------


class ReadProgress:
    """A binary file that reports how far it has been read. httpx streams a multipart file by reading
    it in chunks as it sends them, so the read position is the upload's progress."""

    def __init__(self, file: BinaryIO, on_read: Callable[[int], None]) -> None:
        self._file = file
        self._on_read = on_read

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        self._on_read(self._file.tell())
        return chunk

    def fileno(self) -> int:  # lets httpx learn the size without reading, so it sends a Content-Length
        return self._file.fileno()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()


ProgressCallback = Callable[[int, "int | None"], None]  # (bytes so far, total bytes if known)


def send_file(api: Api, path: Path, on_progress: ProgressCallback | None = None) -> dict:
    """Stream `path` to POST /upload (never whole in memory); returns the server's answer
    (`source`, `filename`, `size`). `on_progress(sent, total)` as the file is read."""
    size = path.stat().st_size
    with path.open("rb") as file:
        body = ReadProgress(file, lambda position: on_progress(position, size)) if on_progress else file
        answer = api.json("POST", "/upload", files={"file": (path.name, body)}, timeout=UPLOAD_TIMEOUT)
    if not isinstance(answer.get("source"), str):
        raise CliError(f"{api.server}/upload answered without a source: is it a MediaFlow server?", EXIT_SERVER)
    return answer


def upload_file(api: Api, path: Path) -> str:
    """send_file with a progress line on stderr; returns the source."""
    started, line = time.monotonic(), ProgressLine()
    name = printable(path.name)

    def on_progress(position: int, size: int | None) -> None:
        line.show(transfer_text("uploading", name, position, size, started), position * 4 // max(size or 1, 1))

    try:
        return send_file(api, path, on_progress)["source"]
    finally:
        line.finish()  # an error message then starts on its own line


# --- file names ------------------------------------------------------------------------------------


def download_filename(raw: str | None, fallback: str) -> str:
    """A server-provided file name reduced to a plain name for the current directory.

    The name is never used as a path: only its last component counts (either slash), control
    characters go, leading dots go (no `..`, no hidden dot-files like `.bashrc`), and it is capped
    at 200 characters. `fallback` is used when nothing usable is left.
    """
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip().lstrip(".").strip()
    if not name:
        return fallback
    if len(name) > 200:
        stem, dot, suffix = name.rpartition(".")
        name = f"{stem[: 199 - len(suffix)]}.{suffix}" if dot and len(suffix) <= 16 else name[:200]
    return name


def filename_from_disposition(header: str | None) -> str | None:
    """The file name a Content-Disposition header proposes (RFC 6266: `filename*=UTF-8''…` wins over
    `filename="…"`, which may be an ASCII stand-in), unsanitized. The stdlib's email parser knows both
    forms and their quoting; it returns the extended form as a (charset, language, text) tuple."""
    if not header:
        return None
    message = email.message.Message()
    message["content-disposition"] = header
    names = [
        value for key, value in message.get_params([], header="content-disposition")[1:] if key.lower() == "filename"
    ]
    extended = [value for value in names if isinstance(value, tuple)]
    candidates = extended or names
    return email.utils.collapse_rfc2231_value(candidates[0]) if candidates else None


def unused_path(path: Path) -> Path:
    """`path`, or `name-1.ext`, `name-2.ext`, … if it exists: a name the server chose never replaces
    a file the user already has (an explicit -o PATH does)."""
    candidate, number = path, 0
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


def download_target(output: Path | None, server_name: str | None, job_id: str) -> Path:
    name = download_filename(server_name, fallback=f"{job_id}.out")
    if output is None:
        return unused_path(Path(name))  # relative, so the printed path is the short one the user sees here
    if output.is_dir():
        return unused_path(output / name)
    return output


# --- downloading -----------------------------------------------------------------------------------


def _default_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def replacing(target: Path) -> Iterator[BinaryIO]:
    """A temporary file beside `target`, renamed into place when the block succeeds and removed when
    it fails: an interrupted download never leaves a partial file under the final name."""
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        os.chmod(temp_name, _default_file_mode())  # mkstemp makes files private; a download is an ordinary file
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def save_stream(chunks: Iterable[bytes], target: Path, on_chunk: Callable[[int], None] = lambda _: None) -> int:
    """Write `chunks` to `target` through `replacing`. Returns the bytes written."""
    written = 0
    with replacing(target) as out:
        for chunk in chunks:
            out.write(chunk)
            written += len(chunk)
            on_chunk(written)
    return written


def save_output(api: Api, job_id: str, output: Path | None, on_progress: ProgressCallback | None = None) -> Path:
    """Stream a completed job's output to disk; returns where it was saved: `output` (a file, or a
    directory for the server's file name), else the server's file name here, never over an existing
    file. `on_progress(received, total)` per chunk. A job that is not completed: CliError saying why."""
    try:
        with api.download(f"/download/{job_id}") as response:
            target = download_target(
                output, filename_from_disposition(response.headers.get("content-disposition")), job_id
            )
            total = _content_length(response)
            try:
                save_stream(
                    response.iter_bytes(),
                    target,
                    (lambda done: on_progress(done, total)) if on_progress else (lambda _: None),
                )
            except OSError as exc:
                raise CliError(f"cannot save the output to {target}: {exc.strerror or exc}") from None
    except CliError as error:
        if error.http_status == 409:  # not completed: say why in the job's own terms
            raise job_not_downloadable(api, job_id, error) from None
        raise
    return target


def download_output(api: Api, job_id: str, output: Path | None) -> Path:
    """save_output with a progress line on stderr."""
    started, line = time.monotonic(), ProgressLine()

    def on_progress(done: int, total: int | None) -> None:
        line.show(transfer_text("downloading", f"job {job_id}", done, total, started), done * 4 // max(total or 1, 1))

    try:
        return save_output(api, job_id, output, on_progress)
    finally:
        line.finish()


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def job_not_downloadable(api: Api, job_id: str, error: CliError) -> CliError:
    job = api.json("GET", f"/status/{job_id}")
    if job.get("status") in ("failed", "canceled"):
        return job_ended_error(job)
    if job.get("status") == "completed":  # completed, yet no one file: it made several
        return CliError(
            f"job {job_id} made more than one file, so there is no one file to save: "
            f"`mediaflow download {job_id} --all -o DIR` saves every file, `--file NAME` one output's file "
            f"(`mediaflow status {job_id}` lists them)",
            EXIT_USAGE,
            http_status=409,
        )
    return CliError(f"{error} — wait for it: `mediaflow wait {job_id} && mediaflow download {job_id}`", EXIT_USAGE)
