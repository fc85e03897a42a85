"""Worker presence in SQLite: a `workers` table beside `jobs`, on the job store's connection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiosqlite

from mediaflow.jobs.model import format_timestamp, parse_timestamp

from .workers import MAX_LIVE_WORKERS, WorkerPresence

TABLE = """
CREATE TABLE IF NOT EXISTS workers (
    worker_id TEXT NOT NULL PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    slots INTEGER NOT NULL,
    busy INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS workers_by_expiry ON workers (expires_at);
"""


class SqliteWorkerRegistry:
    def __init__(
        self,
        db: aiosqlite.Connection,
        write_lock: asyncio.Lock,
        read: Callable[[str, Any], Awaitable[list[aiosqlite.Row]]],
    ) -> None:
        self._db, self._write_lock, self._read = db, write_lock, read

    @staticmethod
    def _presence(row: aiosqlite.Row) -> WorkerPresence:
        return WorkerPresence(
            process_id=row["worker_id"],
            host=row["host"],
            pid=row["pid"],
            slots=row["slots"],
            busy=row["busy"],
            started_at=parse_timestamp(row["started_at"]),
            seen_at=parse_timestamp(row["seen_at"]),
            expires_at=parse_timestamp(row["expires_at"]),
        )

    async def _write(self, sql: str, params: Any) -> list[aiosqlite.Row]:
        async with self._write_lock:
            rows = await self._read(sql, params)  # run to the end, then commit (see SqliteJobStore._read)
            await self._db.commit()
        return rows

    async def beat(self, presence: WorkerPresence) -> None:
        await self._write(
            "INSERT OR REPLACE INTO workers (worker_id, host, pid, slots, busy, started_at, seen_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                presence.process_id,
                presence.host,
                presence.pid,
                presence.slots,
                presence.busy,
                format_timestamp(presence.started_at),
                format_timestamp(presence.seen_at),
                format_timestamp(presence.expires_at),
            ),
        )

    async def leave(self, process_id: str) -> bool:
        return bool(await self._write("DELETE FROM workers WHERE worker_id = ? RETURNING worker_id", (process_id,)))

    async def live(self, now: datetime) -> list[WorkerPresence]:
        rows = await self._read(
            "SELECT * FROM workers WHERE expires_at > ? ORDER BY started_at, worker_id LIMIT ?",
            (format_timestamp(now), MAX_LIVE_WORKERS),
        )
        return [self._presence(row) for row in rows]

    async def prune(self, now: datetime) -> int:
        rows = await self._write(
            "DELETE FROM workers WHERE expires_at <= ? RETURNING worker_id", (format_timestamp(now),)
        )
        return len(rows)
