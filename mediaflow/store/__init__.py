"""The job store: the protocol and errors (`base`), one module per backend, and `open_store`, which
imports a backend only when it is configured (pymongo and boto load only for their backend)."""

from __future__ import annotations

from mediaflow.settings import Settings

from .base import (
    UPDATABLE_FIELDS,
    Expect,
    JobExistsError,
    JobStore,
    StoreUnavailableError,
    check_changes,
)


async def open_store(settings: Settings) -> JobStore:
    """Open (and initialise: tables, indexes) the store chosen by DB_BACKEND."""
    if settings.DB_BACKEND == "sqlite":
        from mediaflow.store.sqlite import SqliteJobStore

        return await SqliteJobStore.open(settings.SQLITE_PATH)
    if settings.DB_BACKEND == "mongodb":
        from mediaflow.store.mongo import MongoJobStore

        return await MongoJobStore.open(settings)
    if settings.DB_BACKEND == "dynamodb":
        from mediaflow.store.dynamo import DynamoJobStore

        return await DynamoJobStore.open(settings)
    raise ValueError(f"unknown DB_BACKEND {settings.DB_BACKEND!r}")


__all__ = [
    "Expect",
    "JobExistsError",
    "JobStore",
    "StoreUnavailableError",
    "UPDATABLE_FIELDS",
    "check_changes",
    "open_store",
]
