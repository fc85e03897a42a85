"""File storage's public face (re-exports only; the code is in `mediaflow/storage/`).

from storage import open_storage
storage = await open_storage(Settings())  # a local directory or S3, by STORAGE_BACKEND
"""

from mediaflow.storage import ObjectNotFoundError, Storage, StorageError, StorageUnavailableError, open_storage

__all__ = ["ObjectNotFoundError", "Storage", "StorageError", "StorageUnavailableError", "open_storage"]
