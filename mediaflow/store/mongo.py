"""MongoDB job store (PyMongo's native async API), for deployments that already run MongoDB.

One document per job in MONGO_JOBS_COLLECTION of DB_NAME, shaped exactly like `Job.to_document()`:

- Timestamps are stored as the fixed-width UTC strings of `schema.format_timestamp`
  ("2026-11-25T09:15:10.000000Z"), not BSON dates. String order equals time order, so sorting and
  range queries behave the same as in the SQLite and DynamoDB stores, and microseconds survive
  (BSON dates keep milliseconds only). The cost: mongosh shows them as strings.
- Enums are stored as their values; unset optional fields as null (not absent).
- Mongo's own `_id` is left to the server and never read; `job_id` has its own unique index.

Every change is a single `find_one_and_update` whose filter carries the `Expect` conditions, so a
claim or a stale write is decided atomically by the server, with no read-modify-write in Python.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.errors import ConfigurationError, DuplicateKeyError, OperationFailure, PyMongoError

from mediaflow.jobs.model import ACTIVE_STATUSES, Job, JobStatus, RecordKind, format_timestamp, utcnow
from mediaflow.settings import Settings

from .base import OLD_TASKS_HOLDER, QUEUED_TASKS_BATCH, Expect, JobExistsError, StoreUnavailableError, check_changes
from .mongo_templates import MongoTemplateStore
from .mongo_workers import MongoWorkerRegistry

# Short enough that a wrong MONGO_URL fails start-up in seconds rather than pymongo's default 30 s.
_SERVER_SELECTION_TIMEOUT_MS = 3000
_NO_ID = {"_id": False}
# Every query for jobs carries this, so no task record is ever read as a job. `$ne` rather than an
# equality: documents stored before record_kind existed have none (their tasks get it at open).
_JOBS_ONLY = {"record_kind": {"$ne": RecordKind.TASK.value}}
# The queued tasks' partial index filter; the query repeats it, so the planner can use that index.
_QUEUED_TASKS = {"record_kind": RecordKind.TASK.value, "status": JobStatus.QUEUED.value}

_INDEXES = [
    IndexModel([("job_id", ASCENDING)], name="job_id_unique", unique=True),
    IndexModel([("created_at", ASCENDING), ("job_id", ASCENDING)], name="created"),
    IndexModel([("status", ASCENDING), ("created_at", ASCENDING), ("job_id", ASCENDING)], name="status_created"),
    IndexModel([("owner", ASCENDING), ("created_at", ASCENDING), ("job_id", ASCENDING)], name="owner_created"),
    IndexModel([("status", ASCENDING), ("lease_expires_at", ASCENDING)], name="status_lease"),
    IndexModel([("owner", ASCENDING), ("status", ASCENDING)], name="owner_status"),
    # Partial: jobs without an idempotency key (null) must not collide with each other.
    IndexModel(
        [("owner", ASCENDING), ("idempotency_key", ASCENDING)],
        name="owner_idempotency_unique",
        unique=True,
        partialFilterExpression={"idempotency_key": {"$type": "string"}},
    ),
    # Partial: task records only, by their job (listings filter them out by record_kind).
    IndexModel(
        [("parent_id", ASCENDING), ("created_at", ASCENDING), ("job_id", ASCENDING)],
        name="parent_created",
        partialFilterExpression={"parent_id": {"$type": "string"}},
    ),
    # Partial: queued tasks only, oldest first (list_queued_tasks).
    IndexModel(
        [("created_at", ASCENDING), ("job_id", ASCENDING)],
        name="queued_tasks",
        partialFilterExpression=_QUEUED_TASKS,
    ),
    # Partial: only jobs with a webhook event pending (the outbox), however many jobs there are.
    IndexModel(
        [("webhook_due_at", ASCENDING), ("job_id", ASCENDING)],
        name="webhook_due",
        partialFilterExpression={"webhook_due_at": {"$type": "string"}},
    ),
]


def _redact(url: str) -> str:
    """The URL for error messages, without the password."""
    return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", url)


def _to_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    if hasattr(value, "value"):  # StrEnum
        return value.value
    return value


def _match(job_id: str, expect: Expect) -> dict[str, Any]:
    """The filter of a conditional change of one job."""
    query: dict[str, Any] = {"job_id": job_id}
    if expect.status is not None:
        query["status"] = {"$in": [status.value for status in expect.status]}
    if expect.worker_id is not None:
        query["worker_id"] = expect.worker_id
    if expect.version is not None:
        query["version"] = expect.version
    if expect.awaiting_tasks is not None:
        # Documents stored before the field existed have none: not awaiting tasks.
        query["awaiting_tasks"] = True if expect.awaiting_tasks else {"$ne": True}
    return query


def _filter(status: JobStatus | None, owner: str | None) -> dict[str, Any]:
    query: dict[str, Any] = dict(_JOBS_ONLY)
    if status is not None:
        query["status"] = status.value
    if owner is not None:
        query["owner"] = owner
    return query


class MongoJobStore:
    def __init__(self, client: AsyncMongoClient, collection: Any, url: str) -> None:
        self._client = client
        self._jobs = collection
        self._url = url
        self.templates = MongoTemplateStore(collection.database[f"{collection.name}_templates"])
        self.workers = MongoWorkerRegistry(collection.database[f"{collection.name}_workers"])

    @classmethod
    async def open(cls, settings: Settings) -> MongoJobStore:
        url = settings.MONGO_URL
        try:
            client: AsyncMongoClient = AsyncMongoClient(
                url,
                serverSelectionTimeoutMS=_SERVER_SELECTION_TIMEOUT_MS,
                connectTimeoutMS=_SERVER_SELECTION_TIMEOUT_MS,
            )
        except (ConfigurationError, ValueError) as exc:
            raise StoreUnavailableError(f"invalid MONGO_URL {_redact(url)!r}: {exc}") from exc
        try:
            store = cls(client, client[settings.DB_NAME][settings.MONGO_JOBS_COLLECTION], url)
            await store.ping()
            await store._jobs.create_indexes(_INDEXES)
            await store._upgrade_older_records()
            await store.templates.create_indexes()
            await store.workers.create_indexes()
        except PyMongoError as exc:
            await client.close()
            reason, hint = str(exc), ""
            if isinstance(exc, OperationFailure):
                reason = (exc.details or {}).get("errmsg", reason)  # without the full server reply
                if exc.code in (85, 86):  # IndexOptionsConflict, IndexKeySpecsConflict
                    hint = "; an index of that name with other options exists: drop it, MediaFlow recreates it"
            raise StoreUnavailableError(
                f"cannot set up the jobs collection in MongoDB at {_redact(url)} (DB_NAME={settings.DB_NAME!r}, "
                f"MONGO_JOBS_COLLECTION={settings.MONGO_JOBS_COLLECTION!r}): {reason}{hint}"
            ) from exc
        except BaseException:
            await client.close()
            raise
        return store

    async def _upgrade_older_records(self) -> None:
        """Documents stored before record kinds: tasks get record_kind (jobs without it read as jobs),
        and a job held by the old sentinel worker awaits its tasks instead. Served by the
        parent_created and status_lease indexes; once done, later starts find nothing to change."""
        older_tasks = {"parent_id": {"$type": "string"}, "record_kind": {"$ne": RecordKind.TASK.value}}
        await self._jobs.update_many(older_tasks, {"$set": {"record_kind": RecordKind.TASK.value}})
        held = {"status": JobStatus.PROCESSING.value, "worker_id": OLD_TASKS_HOLDER}
        await self._jobs.update_many(held, {"$set": {"awaiting_tasks": True, "worker_id": None}})

    async def create(self, job: Job) -> None:
        try:
            await self._jobs.insert_one(job.to_document())
        except DuplicateKeyError as exc:
            # Either the job_id or the (owner, idempotency_key) pair is taken.
            raise JobExistsError(job.job_id) from exc

    async def get(self, job_id: str) -> Job | None:
        document = await self._jobs.find_one({"job_id": job_id, **_JOBS_ONLY}, _NO_ID)
        return Job.from_document(document) if document else None

    async def get_record(self, record_id: str) -> Job | None:
        document = await self._jobs.find_one({"job_id": record_id}, _NO_ID)
        return Job.from_document(document) if document else None

    async def list(
        self,
        *,
        limit: int,
        skip: int = 0,
        status: JobStatus | None = None,
        owner: str | None = None,
        oldest_first: bool = False,
    ) -> builtins.list[Job]:
        if limit <= 0:
            return []  # Mongo reads limit 0 as "no limit"
        direction = ASCENDING if oldest_first else DESCENDING
        cursor = (
            self._jobs.find(_filter(status, owner), _NO_ID)
            .sort([("created_at", direction), ("job_id", direction)])
            .skip(skip)
            .limit(limit)
        )
        return [Job.from_document(document) async for document in cursor]

    async def count(self, *, status: JobStatus | None = None, owner: str | None = None) -> int:
        return await self._jobs.count_documents(_filter(status, owner))

    async def count_active(self, owner: str | None) -> int:
        statuses = sorted(status.value for status in ACTIVE_STATUSES)
        return await self._jobs.count_documents({"owner": owner, "status": {"$in": statuses}, **_JOBS_ONLY})

    async def update(self, job_id: str, changes: Mapping[str, Any], expect: Expect = Expect()) -> Job | None:
        check_changes(changes)
        fields = {name: _to_value(value) for name, value in changes.items()}
        document = await self._jobs.find_one_and_update(
            _match(job_id, expect),
            {"$set": {**fields, "updated_at": format_timestamp(utcnow())}, "$inc": {"version": 1}},
            projection=_NO_ID,
            return_document=ReturnDocument.AFTER,
        )
        return Job.from_document(document) if document else None

    async def delete(self, job_id: str, expect: Expect = Expect()) -> bool:
        return (await self._jobs.delete_one(_match(job_id, expect))).deleted_count == 1

    async def find_by_idempotency_key(self, owner: str | None, key: str) -> Job | None:
        # {"owner": None} matches null; every stored document has the field, so that means "no owner".
        document = await self._jobs.find_one({"owner": owner, "idempotency_key": key}, _NO_ID)
        return Job.from_document(document) if document else None

    async def list_tasks(self, parent_id: str) -> builtins.list[Job]:
        # The $type condition is the partial index's filter: it lets the planner use that index.
        cursor = self._jobs.find({"parent_id": {"$type": "string", "$eq": parent_id}}, _NO_ID).sort(
            [("created_at", ASCENDING), ("job_id", ASCENDING)]
        )
        return [Job.from_document(document) async for document in cursor]

    async def list_queued_tasks(self, limit: int = QUEUED_TASKS_BATCH) -> builtins.list[Job]:
        if limit <= 0:
            return []
        oldest_first = [("created_at", ASCENDING), ("job_id", ASCENDING)]
        # Named, so no planner walks status_created through a backlog of queued jobs instead.
        cursor = self._jobs.find(_QUEUED_TASKS, _NO_ID).sort(oldest_first).hint("queued_tasks").limit(limit)
        return [Job.from_document(document) async for document in cursor]

    async def list_expired_leases(self, now: datetime, limit: int = 100) -> builtins.list[Job]:
        if limit <= 0:
            return []
        # $lt on a string never matches null, so jobs without a lease are left out.
        cursor = (
            self._jobs.find(
                {"status": JobStatus.PROCESSING.value, "lease_expires_at": {"$lt": format_timestamp(now)}},
                _NO_ID,
            )
            .sort([("lease_expires_at", ASCENDING)])
            .limit(limit)
        )
        return [Job.from_document(document) async for document in cursor]

    async def list_webhooks_due(self, now: datetime, limit: int = 100) -> builtins.list[Job]:
        if limit <= 0:
            return []
        # The $type condition is the partial index's filter: it lets the planner use that index.
        due = {"webhook_due_at": {"$type": "string", "$lte": format_timestamp(now)}}
        cursor = self._jobs.find(due, _NO_ID).sort([("webhook_due_at", ASCENDING), ("job_id", ASCENDING)]).limit(limit)
        return [Job.from_document(document) async for document in cursor]

    async def ping(self) -> None:
        try:
            await self._client.admin.command("ping")
        except PyMongoError as exc:
            # Keep the reason, drop pymongo's topology dump that follows it.
            reason = str(exc).split(", Timeout:")[0]
            raise StoreUnavailableError(
                f"cannot reach MongoDB at {_redact(self._url)}: {reason}; check MONGO_URL"
            ) from exc

    async def close(self) -> None:
        await self._client.close()
