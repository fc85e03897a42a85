"""Local-directory storage: the embedded default. Keys are relative paths below the root; every
write goes to a temporary file in the same directory and is renamed into place, so a reader never
sees a partial object."""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime
from pathlib import Path

from .base import (
    ByteRange,
    ObjectNotFoundError,
    RangeNotSatisfiableError,
    StorageError,
    StorageUnavailableError,
    StoredObject,
    TransferProgress,
    UploadTooLargeError,
)
from .keys import validate_key


class LocalStorage:
    supports_s3_sources = False

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def location(self, key: str) -> str:
        # The key itself (relative to LOCAL_STORAGE_DIR), never the absolute path: output_path and
        # log_path are shown to users and sent in webhooks, and the server's layout is not theirs.
        return validate_key(key)

    def key_for(self, location: str) -> str | None:
        if not Path(location).is_absolute():
            try:
                return validate_key(location)
            except StorageError:
                return None
        try:  # an absolute path: what job records written before keys were shown still hold
            relative = Path(location).resolve().relative_to(self.root)
        except ValueError:
            return None
        return relative.as_posix()

    async def put_file(self, key: str, path: Path, content_type: str, progress: TransferProgress | None = None) -> str:
        target = self._path(key)
        await _copy_atomically(Path(path), target, progress)
        return self.location(key)

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], content_type: str, max_bytes: int) -> int:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise UploadTooLargeError(f"upload exceeds the limit of {max_bytes} bytes")
                    await asyncio.to_thread(out.write, chunk)
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return size

    async def put_new(self, key: str, data: bytes, content_type: str) -> bool:
        target = self._path(key)

        def write() -> bool:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".partial-")  # mode 0600
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                os.link(temp_name, target)  # fails if the target exists: only one writer wins
            except FileExistsError:
                return False
            finally:
                Path(temp_name).unlink(missing_ok=True)
            return True

        return await asyncio.to_thread(write)

    async def get_file(self, key: str, dest: Path, progress: TransferProgress | None = None) -> None:
        source = self._path(key)
        if not source.is_file():
            raise ObjectNotFoundError(f"no stored object {key!r}")
        await _copy_atomically(source, Path(dest), progress)

    async def open_read(
        self, key: str, chunk_size: int = 1024 * 1024, byte_range: ByteRange | None = None
    ) -> StoredObject:
        path = self._path(key)
        try:
            handle = open(path, "rb")  # noqa: ASYNC230  (opening is cheap; reads and writes go through threads or are small)
        except FileNotFoundError as exc:
            raise ObjectNotFoundError(f"no stored object {key!r}") from exc
        total = os.fstat(handle.fileno()).st_size
        try:
            first, last = byte_range.resolve(total) if byte_range else (0, total - 1)
        except RangeNotSatisfiableError:
            handle.close()
            raise
        handle.seek(first)

        async def chunks() -> AsyncIterator[bytes]:
            remaining = last - first + 1
            try:
                while remaining > 0 and (chunk := await asyncio.to_thread(handle.read, min(chunk_size, remaining))):
                    remaining -= len(chunk)
                    yield chunk
            finally:
                handle.close()

        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return StoredObject(
            size=last - first + 1,
            content_type=content_type,
            chunks=chunks(),
            range=(first, last) if byte_range else None,
            total_size=total,
        )

    async def presigned_url(self, key: str, filename: str) -> str | None:
        return None

    async def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    async def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        if path.parent != self.root:  # a job's folder goes with its last file (S3 has no folders to leave)
            with contextlib.suppress(OSError):  # not empty, or gone already
                path.parent.rmdir()

    async def list_keys(self, prefix: str, modified_before: datetime, limit: int) -> list[str]:
        base = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        cutoff = modified_before.timestamp()

        def scan() -> list[str]:
            found: list[str] = []
            for directory, _, names in os.walk(base):
                for name in names:
                    path = Path(directory) / name
                    if name.startswith("."):  # .partial-*: a write in progress, not an object yet
                        continue
                    try:
                        if path.stat().st_mtime >= cutoff:
                            continue
                    except FileNotFoundError:  # removed meanwhile
                        continue
                    found.append(path.relative_to(self.root).as_posix())
                    if len(found) >= limit:
                        return found
            return found

        return await asyncio.to_thread(scan)

    async def fetch_uri(self, uri: str, dest: Path, progress: TransferProgress | None = None) -> None:
        raise StorageError(f"cannot read {uri!r}: S3 is not configured (set STORAGE_BACKEND=s3 and the AWS_* settings)")

    def in_bucket(self, bucket: str) -> None:
        return None  # a directory has no buckets: a `destination` is refused at submission

    async def ping(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=self.root, prefix=".ping-")
            probe.close()
        except OSError as exc:
            raise StorageUnavailableError(f"local storage directory {self.root} is not writable: {exc}") from exc

    async def close(self) -> None:
        return None


_COPY_CHUNK = 4 * 1024 * 1024


async def _copy_atomically(source: Path, target: Path, progress: TransferProgress | None) -> None:
    """Copy in a thread through a temp file renamed into place; report progress on the event loop."""
    loop = asyncio.get_running_loop()

    def report(done: int, total: int) -> None:
        if progress is not None:
            loop.call_soon_threadsafe(progress, done, total)

    def copy() -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                total, done = os.fstat(src.fileno()).st_size, 0
                while chunk := src.read(_COPY_CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    report(done, total)
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise

    await asyncio.to_thread(copy)
