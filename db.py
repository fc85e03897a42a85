"""The job store's public face (re-exports only; the code is in `mediaflow/store/`).

from db import open_store
store = await open_store(Settings())      # SQLite, MongoDB or DynamoDB, by DB_BACKEND
"""

from mediaflow.store import Expect, JobExistsError, JobStore, StoreUnavailableError, open_store

__all__ = ["Expect", "JobExistsError", "JobStore", "StoreUnavailableError", "open_store"]
