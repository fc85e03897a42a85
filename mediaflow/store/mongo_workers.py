"""Worker presence in MongoDB: one document per process in MONGO_JOBS_COLLECTION + "_workers".

Expired documents are removed by `prune` (every process that beats calls it now and then) rather than a
TTL index: a TTL index needs BSON dates, while every timestamp here is the fixed-width string the job
documents use, and its monitor runs only once a minute anyway; `live` filters on expiry either way."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel

from mediaflow.jobs.model import format_timestamp, parse_timestamp

from .workers import MAX_LIVE_WORKERS, WorkerPresence

INDEXES = [
    IndexModel([("worker_id", ASCENDING)], name="worker_id_unique", unique=True),
    IndexModel([("expires_at", ASCENDING)], name="expires"),
]
_NO_ID = {"_id": False}


class MongoWorkerRegistry:
    def __init__(self, collection: Any) -> None:
        self._workers = collection

    async def create_indexes(self) -> None:
        await self._workers.create_indexes(INDEXES)

    @staticmethod
    def _presence(document: dict) -> WorkerPresence:
        return WorkerPresence(
            process_id=document["worker_id"],
            host=document["host"],
            pid=document["pid"],
            slots=document["slots"],
            busy=document["busy"],
            started_at=parse_timestamp(document["started_at"]),
            seen_at=parse_timestamp(document["seen_at"]),
            expires_at=parse_timestamp(document["expires_at"]),
        )

    async def beat(self, presence: WorkerPresence) -> None:
        fields = {
            "host": presence.host,
            "pid": presence.pid,
            "slots": presence.slots,
            "busy": presence.busy,
            "started_at": format_timestamp(presence.started_at),
            "seen_at": format_timestamp(presence.seen_at),
            "expires_at": format_timestamp(presence.expires_at),
        }
        await self._workers.update_one({"worker_id": presence.process_id}, {"$set": fields}, upsert=True)

    async def leave(self, process_id: str) -> bool:
        return (await self._workers.delete_one({"worker_id": process_id})).deleted_count == 1

    async def live(self, now: datetime) -> list[WorkerPresence]:
        cursor = (
            self._workers.find({"expires_at": {"$gt": format_timestamp(now)}}, _NO_ID)
            .sort([("started_at", ASCENDING), ("worker_id", ASCENDING)])
            .limit(MAX_LIVE_WORKERS)
        )
        return [self._presence(document) async for document in cursor]

    async def prune(self, now: datetime) -> int:
        return (await self._workers.delete_many({"expires_at": {"$lte": format_timestamp(now)}})).deleted_count
