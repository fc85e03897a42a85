"""`DeliveringStorage`: one job's view of storage when its files are delivered to the user's bucket.

Every caller keeps computing keys the one way (`storage/keys.py`: `OUTPUT_PREFIX/<job_id>/<file>`);
this view moves the job's folder to the destination (`<prefix><job_id>/<file>` in the user's bucket)
and leaves everything else where it was: uploads, other jobs, MediaFlow's own state, and the chunk
pieces under `.tasks/` (scratch that workers share, removed when the job ends: not the user's).
`location` and `key_for` translate both ways, so `output_path` names the delivered object and
downloads of it keep working.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from datetime import datetime
from pathlib import Path

from .base import (
    AccessDeniedError,
    ByteRange,
    ObjectNotFoundError,
    PermanentStorageError,
    Storage,
    StoredObject,
    TransferProgress,
)
from .keys import TASKS_FOLDER


class DeliveringStorage:
    def __init__(self, home: Storage, delivered: Storage, home_folder: str, delivered_folder: str, uri: str) -> None:
        self._home, self._delivered = home, delivered
        self._home_folder, self._delivered_folder = home_folder, delivered_folder
        self._uri = uri
        self.supports_s3_sources = home.supports_s3_sources

    def _route(self, key: str) -> tuple[Storage, str]:
        rest = key.removeprefix(self._home_folder)
        if rest == key or rest.startswith(f"{TASKS_FOLDER}/"):
            return self._home, key
        return self._delivered, self._delivered_folder + rest

    def _undeliverable(self, exc: Exception) -> PermanentStorageError:
        # A destination bucket that does not exist or refuses our writes will not change its mind on a
        # retry: the job fails, saying where it tried to deliver.
        return PermanentStorageError(
            f"cannot deliver the job's files to {self._uri}: the bucket does not exist or this server may not "
            f"write to it ({exc}); check the destination, or leave it out"
        )

    # --- keys and locations --------------------------------------------------------------------

    def location(self, key: str) -> str:
        storage, routed = self._route(key)
        return storage.location(routed)

    def key_for(self, location: str) -> str | None:
        delivered = self._delivered.key_for(location)
        if delivered is not None and delivered.startswith(self._delivered_folder):
            return self._home_folder + delivered.removeprefix(self._delivered_folder)
        return self._home.key_for(location)

    def in_bucket(self, bucket: str) -> Storage | None:
        return self._home.in_bucket(bucket)

    # --- writing -------------------------------------------------------------------------------

    async def put_file(self, key: str, path: Path, content_type: str, progress: TransferProgress | None = None) -> str:
        storage, routed = self._route(key)
        try:
            return await storage.put_file(routed, path, content_type, progress)
        except (ObjectNotFoundError, AccessDeniedError) as exc:
            if storage is self._home:
                raise
            raise self._undeliverable(exc) from exc

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], content_type: str, max_bytes: int) -> int:
        storage, routed = self._route(key)
        return await storage.put_stream(routed, chunks, content_type, max_bytes)

    async def put_new(self, key: str, data: bytes, content_type: str) -> bool:
        storage, routed = self._route(key)
        return await storage.put_new(routed, data, content_type)

    # --- reading -------------------------------------------------------------------------------

    async def get_file(self, key: str, dest: Path, progress: TransferProgress | None = None) -> None:
        storage, routed = self._route(key)
        await storage.get_file(routed, dest, progress)

    async def open_read(
        self, key: str, chunk_size: int = 1024 * 1024, byte_range: ByteRange | None = None
    ) -> StoredObject:
        storage, routed = self._route(key)
        return await storage.open_read(routed, chunk_size, byte_range)

    async def presigned_url(self, key: str, filename: str) -> str | None:
        storage, routed = self._route(key)
        return await storage.presigned_url(routed, filename)

    async def exists(self, key: str) -> bool:
        storage, routed = self._route(key)
        return await storage.exists(routed)

    async def delete(self, key: str) -> None:
        storage, routed = self._route(key)
        await storage.delete(routed)

    async def list_keys(self, prefix: str, modified_before: datetime, limit: int) -> list[str]:
        return await self._home.list_keys(prefix, modified_before, limit)  # clean-up lists our own storage only

    async def fetch_uri(self, uri: str, dest: Path, progress: TransferProgress | None = None) -> None:
        await self._home.fetch_uri(uri, dest, progress)

    async def ping(self) -> None:
        await self._home.ping()

    async def close(self) -> None:
        """Nothing: the clients belong to the server's storage, which the runtime closes."""
