"""Storage: where uploads, results and ffmpeg logs live, behind the `Storage` protocol.

Objects are addressed by *keys* relative to the storage root (LOCAL_STORAGE_DIR, or OUTPUT_BUCKET on
S3). `location(key)` is what users see in `output_path`/`log_path`: the key itself for local storage
(a path relative to LOCAL_STORAGE_DIR, never the server's absolute path), an `s3://bucket/key` URI
for S3. Writes are atomic (temp file + rename locally, single PUT or
completed multipart upload on S3), so a location never points at a partial file.

Backends: `storage/local.py` (default) and `storage/s3.py`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import quote


class StorageError(Exception):
    """A storage operation failed; `transient` tells whether retrying may help."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class ObjectNotFoundError(StorageError):
    pass


class PermanentStorageError(StorageError):
    """The storage refused the request itself (S3: a 4xx such as 400 InvalidRequest, not a throttle or
    a timeout): sending it again gets the same answer, so a job fails at once instead of retrying."""


class AccessDeniedError(PermanentStorageError):
    """The credentials may not do this (S3: 403)."""


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


class RangeNotSatisfiableError(StorageError):
    """A requested byte range starts past the end of the object."""

    def __init__(self, message: str, total_size: int) -> None:
        super().__init__(message)
        self.total_size = total_size


@dataclass(frozen=True)
class ByteRange:
    """One HTTP byte range: `start-end` (inclusive), `start-` (to the end) or `-end` (the last `end` bytes)."""

    start: int | None
    end: int | None

    _HEADER = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")

    @classmethod
    def parse(cls, header: str | None) -> ByteRange | None:
        """The range of a `Range` header; None (serve the whole object) for anything else, including
        multiple ranges, which a server may ignore (RFC 9110 §14.2)."""
        match = cls._HEADER.match(header or "")
        if not match or match.groups() == ("", ""):
            return None
        start, end = (int(v) if v else None for v in match.groups())
        if start is not None and end is not None and end < start:
            return None
        return cls(start, end)

    def resolve(self, total_size: int) -> tuple[int, int]:
        """Inclusive (first, last) byte offsets within an object of `total_size` bytes."""
        if self.start is None:  # suffix: the last `end` bytes
            first, last = max(total_size - (self.end or 0), 0), total_size - 1
        else:
            first, last = self.start, min(self.end if self.end is not None else total_size - 1, total_size - 1)
        if first >= total_size or last < first:
            raise RangeNotSatisfiableError(
                f"range {self.header_value()} is outside the object's {total_size} bytes", total_size
            )
        return first, last

    def header_value(self) -> str:
        return f"bytes={'' if self.start is None else self.start}-{'' if self.end is None else self.end}"


@dataclass
class StoredObject:
    size: int  # bytes that `chunks` yields
    content_type: str
    chunks: AsyncIterator[bytes]
    # For a ranged read: the inclusive offsets served and the whole object's size.
    range: tuple[int, int] | None = None
    total_size: int | None = None


@runtime_checkable
class Storage(Protocol):
    #: True when `fetch_uri` can read s3:// sources.
    supports_s3_sources: bool

    def location(self, key: str) -> str:
        """The user-facing location (local: the key itself; S3: an s3:// URI) of a key."""

    def key_for(self, location: str) -> str | None:
        """The key of a location this storage produced, or None if it is not one of ours."""

    async def put_file(self, key: str, path: Path, content_type: str, progress: TransferProgress | None = None) -> str:
        """Store a local file under `key` (atomically) and return its location."""

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], content_type: str, max_bytes: int) -> int:
        """Stream an upload to `key`; returns its size. Raises UploadTooLargeError past max_bytes
        (and leaves nothing behind)."""

    async def put_new(self, key: str, data: bytes, content_type: str) -> bool:
        """Store small `data` under `key` only if nothing is there yet, atomically: of several
        processes racing, exactly one writes. False if the key existed."""

    async def get_file(self, key: str, dest: Path, progress: TransferProgress | None = None) -> None:
        """Copy the object at `key` to the local file `dest` (streamed). ObjectNotFoundError if absent."""

    async def open_read(
        self, key: str, chunk_size: int = 1024 * 1024, byte_range: ByteRange | None = None
    ) -> StoredObject:
        """Stream an object (or one byte range of it) for a download response. ObjectNotFoundError if
        absent, RangeNotSatisfiableError if the range starts past its end."""

    async def presigned_url(self, key: str, filename: str) -> str | None:
        """A time-limited direct download URL, or None when the backend has none."""

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...

    async def list_keys(self, prefix: str, modified_before: datetime, limit: int) -> list[str]:
        """Keys under `prefix` (ending in "/") last written before `modified_before`, at most
        `limit` of them, in no particular order (for clean-up, never for serving)."""

    async def fetch_uri(self, uri: str, dest: Path, progress: TransferProgress | None = None) -> None:
        """Copy an external source (s3://bucket/key) to `dest`, streamed."""

    def in_bucket(self, bucket: str) -> Storage | None:
        """The same storage and credentials on another bucket (a job's `destination`), sharing this
        one's clients (close only this one); None for a backend without buckets (local)."""

    async def ping(self) -> None:
        """Raise StorageUnavailableError unless the backend answers."""

    async def close(self) -> None: ...
