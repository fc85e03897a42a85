"""Storage: where uploads, results and ffmpeg logs live, behind the `Storage` protocol.

Objects are addressed by *keys* relative to the storage root (LOCAL_STORAGE_DIR, or OUTPUT_BUCKET on
S3). `location(key)` is what users see in `output_path`/`log_path`: an absolute file path for local
storage, an `s3://bucket/key` URI for S3. Writes are atomic (temp file + rename locally, single PUT or
completed multipart upload on S3), so a location never points at a partial file.

Backends: `backends/local_storage.py` (default) and `backends/s3_storage.py`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import quote

from settings import Settings


class StorageError(Exception):
    """A storage operation failed; `transient` tells whether retrying may help."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class ObjectNotFoundError(StorageError):
    pass


class UploadTooLargeError(StorageError):
    pass


class StorageUnavailableError(StorageError):
    """The configured storage cannot be reached or is misconfigured."""


def content_disposition(disposition: str, filename: str) -> str:
    """A Content-Disposition header value: an ASCII fallback name plus the exact one (RFC 6266).
    The fallback matters: headers are latin-1, and file names come from users (any script, quotes)."""
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", filename) or "download"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


# Called as bytes move: (bytes transferred so far, total bytes or None when unknown). Runs on the
# event loop and must return at once; the worker uses it to move the progress bar during transfers.
TransferProgress = Callable[[int, "int | None"], None]


@dataclass
class StoredObject:
    size: int
    content_type: str
    chunks: AsyncIterator[bytes]


@runtime_checkable
class Storage(Protocol):
    #: True when `fetch_uri` can read s3:// sources.
    supports_s3_sources: bool

    def location(self, key: str) -> str:
        """The user-facing location (absolute path or s3:// URI) of a key."""

    def key_for(self, location: str) -> str | None:
        """The key of a location this storage produced, or None if it is not one of ours."""

    async def put_file(self, key: str, path: Path, content_type: str, progress: TransferProgress | None = None) -> str:
        """Store a local file under `key` (atomically) and return its location."""

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], content_type: str, max_bytes: int) -> int:
        """Stream an upload to `key`; returns its size. Raises UploadTooLargeError past max_bytes
        (and leaves nothing behind)."""

    async def get_file(self, key: str, dest: Path, progress: TransferProgress | None = None) -> None:
        """Copy the object at `key` to the local file `dest` (streamed). ObjectNotFoundError if absent."""

    async def open_read(self, key: str, chunk_size: int = 1024 * 1024) -> StoredObject:
        """Stream an object for a download response. ObjectNotFoundError if absent."""

    async def presigned_url(self, key: str, filename: str) -> str | None:
        """A time-limited direct download URL, or None when the backend has none."""

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...

    async def fetch_uri(self, uri: str, dest: Path, progress: TransferProgress | None = None) -> None:
        """Copy an external source (s3://bucket/key) to `dest`, streamed."""

    async def ping(self) -> None:
        """Raise StorageUnavailableError unless the backend answers."""

    async def close(self) -> None: ...


async def open_storage(settings: Settings) -> Storage:
    if settings.STORAGE_BACKEND == "local":
        from backends.local_storage import LocalStorage

        return LocalStorage(settings.LOCAL_STORAGE_DIR)
    if settings.STORAGE_BACKEND == "s3":
        from backends.s3_storage import S3Storage

        return await S3Storage.open(settings)
    raise ValueError(f"unknown STORAGE_BACKEND {settings.STORAGE_BACKEND!r}")
