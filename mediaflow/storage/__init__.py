"""File storage: protocol and errors (`base`), `local` and `s3` backends, and `open_storage`, which
imports a backend only when it is configured."""

from __future__ import annotations

from mediaflow.settings import Settings

from .base import (
    AccessDeniedError,
    ByteRange,
    ObjectNotFoundError,
    PermanentStorageError,
    RangeNotSatisfiableError,
    Storage,
    StorageError,
    StorageUnavailableError,
    StoredObject,
    TransferProgress,
    UploadTooLargeError,
    content_disposition,
)


async def open_storage(settings: Settings) -> Storage:
    if settings.STORAGE_BACKEND == "local":
        from mediaflow.storage.local import LocalStorage

        return LocalStorage(settings.LOCAL_STORAGE_DIR)
    if settings.STORAGE_BACKEND == "s3":
        from mediaflow.storage.s3 import S3Storage

        return await S3Storage.open(settings)
    raise ValueError(f"unknown STORAGE_BACKEND {settings.STORAGE_BACKEND!r}")


__all__ = [
    "AccessDeniedError",
    "ByteRange",
    "ObjectNotFoundError",
    "PermanentStorageError",
    "RangeNotSatisfiableError",
    "Storage",
    "StorageError",
    "StorageUnavailableError",
    "StoredObject",
    "TransferProgress",
    "UploadTooLargeError",
    "content_disposition",
    "open_storage",
]
