"""SQLite job store: the embedded default. One file, shared safely by the API and any number of
worker processes on the same machine (WAL mode; every change is a single conditional UPDATE)."""

from __future__ import annotations

import asyncio
import builtins
import sqlite3
import typing
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from mediaflow.jobs.model import ACTIVE_STATUSES, Job, JobStatus, RecordKind, format_timestamp, utcnow

from .base import OLD_TASKS_HOLDER, QUEUED_TASKS_BATCH, Expect, JobExistsError, StoreUnavailableError, check_changes
from .sqlite_templates import TABLE as TEMPLATES_TABLE
from .sqlite_templates import SqliteTemplateStore
from .sqlite_workers import TABLE as WORKERS_TABLE
from .sqlite_workers import SqliteWorkerRegistry

# One column per Job field; the record is rebuilt with Job.from_document.
_COLUMNS = list(Job.model_fields)


def _column_type(annotation: Any) -> str:
    types = set(typing.get_args(annotation)) | {annotation}
    if types & {int, bool}:
        return "INTEGER"
    return "REAL" if float in types else "TEXT"


_TABLE = f"""
CREATE TABLE IF NOT EXISTS jobs (
    {", ".join(f"{name} {_column_type(field.annotation)}" for name, field in Job.model_fields.items())},
    PRIMARY KEY (job_id)
);
"""
# After the column migration: an index on a column that an older database lacks would fail.
_INDEXES = """
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at, job_id);
CREATE INDEX IF NOT EXISTS jobs_by_status_created ON jobs (status, created_at, job_id);
CREATE INDEX IF NOT EXISTS jobs_by_owner_created ON jobs (owner, created_at, job_id);
CREATE INDEX IF NOT EXISTS jobs_by_lease ON jobs (status, lease_expires_at);
CREATE INDEX IF NOT EXISTS jobs_by_owner_status ON jobs (owner, status);
-- ifnull: SQLite treats NULLs as distinct in a unique index, and "no owner" is one owner here.
DROP INDEX IF EXISTS jobs_by_idempotency;
CREATE UNIQUE INDEX IF NOT EXISTS jobs_by_owner_idempotency ON jobs (ifnull(owner, ''), idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- Partial: task records only, by their job; listings leave them out with `record_kind = 'job'`.
CREATE INDEX IF NOT EXISTS jobs_by_parent ON jobs (parent_id, created_at, job_id) WHERE parent_id IS NOT NULL;
-- Partial: queued tasks only, oldest first (list_queued_tasks names it: the planner would otherwise walk
-- jobs_by_status_created through every queued job too).
CREATE INDEX IF NOT EXISTS jobs_queued_tasks ON jobs (created_at, job_id)
    WHERE record_kind = 'task' AND status = 'queued';
-- Partial: only jobs with a webhook event pending, a handful, whatever the table's size.
CREATE INDEX IF NOT EXISTS jobs_by_webhook_due ON jobs (webhook_due_at) WHERE webhook_due_at IS NOT NULL;
"""
# A column added to an older database: what its existing rows hold (run once every new column is there).
_BACKFILL = {
    "record_kind": "UPDATE jobs SET record_kind = CASE WHEN parent_id IS NULL THEN 'job' ELSE 'task' END",
    "awaiting_tasks": f"""
        UPDATE jobs SET awaiting_tasks = (status = 'processing' AND worker_id IS '{OLD_TASKS_HOLDER}'),
            worker_id = CASE WHEN status = 'processing' AND worker_id IS '{OLD_TASKS_HOLDER}' THEN NULL
                ELSE worker_id END""",
}
# Every query for jobs carries this, so no task record is ever read as a job.
_JOBS_ONLY = f"record_kind = '{RecordKind.JOB.value}'"
_QUEUED_TASKS = f"""
SELECT * FROM jobs INDEXED BY jobs_queued_tasks
WHERE record_kind = '{RecordKind.TASK.value}' AND status = '{JobStatus.QUEUED.value}'
ORDER BY created_at, job_id LIMIT ?
"""


def _to_column(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    if hasattr(value, "value"):  # StrEnum
        return value.value
    return value


class SqliteJobStore:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        # One connection serves every task in the process. A commit issued while another task's
        # UPDATE ... RETURNING is still open fails ("SQL statements in progress"), so writes take turns.
        self._write_lock = asyncio.Lock()
        self.templates = SqliteTemplateStore(connection, self._write_lock, self._read)
        self.workers = SqliteWorkerRegistry(connection, self._write_lock, self._read)

    @classmethod
    async def open(cls, path: Path) -> SqliteJobStore:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = await aiosqlite.connect(path, timeout=30)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailableError(f"cannot open the SQLite job store at {path}: {exc}") from exc
        connection.row_factory = aiosqlite.Row
        # WAL lets readers (the API) run while a worker writes; busy_timeout makes concurrent
        # writers from other processes wait instead of failing.
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute("PRAGMA busy_timeout=30000")
        await connection.execute("PRAGMA synchronous=NORMAL")
        await connection.executescript(_TABLE)
        await connection.executescript(TEMPLATES_TABLE)
        await connection.executescript(WORKERS_TABLE)
        await cls._add_missing_columns(connection)
        await connection.executescript(_INDEXES)
        await connection.commit()
        return cls(connection)

    @staticmethod
    async def _add_missing_columns(connection: aiosqlite.Connection) -> None:
        """A database made by an older MediaFlow gets the columns of fields added since."""
        async with connection.execute("PRAGMA table_info(jobs)") as cursor:
            existing = {row["name"] for row in await cursor.fetchall()}
        added = [name for name in Job.model_fields if name not in existing]
        for name in added:
            await connection.execute(
                f"ALTER TABLE jobs ADD COLUMN {name} {_column_type(Job.model_fields[name].annotation)}"
            )
        for name in added:  # once every column is there: a backfill may read another new one
            if name in _BACKFILL:
                await connection.execute(_BACKFILL[name])

    async def _read(self, sql: str, params: Any = ()) -> list[aiosqlite.Row]:
        """Run a statement to its end in one call on the connection's thread.

        Never `execute` and then `fetch` in two awaits: in between, another task's UPDATE runs on the
        same connection while this statement holds a read snapshot, and if another process committed
        since, SQLite refuses the UPDATE with 'database is locked' at once (no busy wait can help a
        stale snapshot). Statements that finish in one call never leave a snapshot open."""
        return list(await self._db.execute_fetchall(sql, params))

    @staticmethod
    def _one(rows: list[aiosqlite.Row]) -> Job | None:
        return Job.from_document(dict(rows[0])) if rows else None

    @staticmethod
    def _all(rows: list[aiosqlite.Row]) -> list[Job]:
        return [Job.from_document(dict(row)) for row in rows]

    async def create(self, job: Job) -> None:
        document = job.to_document()
        placeholders = ", ".join("?" for _ in _COLUMNS)
        async with self._write_lock:
            try:
                await self._db.execute(
                    f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                    [document[name] for name in _COLUMNS],
                )
                await self._db.commit()
            except sqlite3.IntegrityError as exc:
                await self._db.rollback()
                raise JobExistsError(job.job_id) from exc

    async def get(self, job_id: str) -> Job | None:
        return self._one(await self._read(f"SELECT * FROM jobs WHERE job_id = ? AND {_JOBS_ONLY}", (job_id,)))

    async def get_record(self, record_id: str) -> Job | None:
        return self._one(await self._read("SELECT * FROM jobs WHERE job_id = ?", (record_id,)))

    async def list(
        self,
        *,
        limit: int,
        skip: int = 0,
        status: JobStatus | None = None,
        owner: str | None = None,
        oldest_first: bool = False,
    ) -> builtins.list[Job]:
        where, params = self._filters(status, owner)
        order = "ASC" if oldest_first else "DESC"
        sql = f"SELECT * FROM jobs{where} ORDER BY created_at {order}, job_id {order} LIMIT ? OFFSET ?"
        return self._all(await self._read(sql, [*params, limit, skip]))

    async def count(self, *, status: JobStatus | None = None, owner: str | None = None) -> int:
        where, params = self._filters(status, owner)
        [(total,)] = await self._read(f"SELECT COUNT(*) FROM jobs{where}", params)
        return total

    async def count_active(self, owner: str | None) -> int:
        # `IS` matches NULL to NULL (the jobs without an owner) and still uses the index.
        [(total,)] = await self._read(
            f"SELECT COUNT(*) FROM jobs WHERE owner IS ? AND status IN (?, ?) AND {_JOBS_ONLY}",
            [owner, *sorted(status.value for status in ACTIVE_STATUSES)],
        )
        return total

    @staticmethod
    def _filters(status: JobStatus | None, owner: str | None) -> tuple[str, builtins.list[Any]]:
        where: builtins.list[str] = [_JOBS_ONLY]
        params: builtins.list[Any] = []
        if status is not None:
            where.append("status = ?")
            params.append(status.value)
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)
        return " WHERE " + " AND ".join(where), params

    async def update(self, job_id: str, changes: Mapping[str, Any], expect: Expect = Expect()) -> Job | None:
        check_changes(changes)
        assignments = [f"{name} = ?" for name in changes] + ["updated_at = ?", "version = version + 1"]
        params: builtins.list[Any] = [_to_column(value) for value in changes.values()] + [format_timestamp(utcnow())]
        where, where_params = self._match(job_id, expect)
        sql = f"UPDATE jobs SET {', '.join(assignments)} WHERE {where} RETURNING *"
        async with self._write_lock:
            rows = await self._read(sql, [*params, *where_params])  # UPDATE ... RETURNING, run to the end
            await self._db.commit()
        return self._one(rows)

    async def delete(self, job_id: str, expect: Expect = Expect()) -> bool:
        where, params = self._match(job_id, expect)
        async with self._write_lock:
            rows = await self._read(f"DELETE FROM jobs WHERE {where} RETURNING job_id", params)
            await self._db.commit()
        return bool(rows)

    @staticmethod
    def _match(job_id: str, expect: Expect) -> tuple[str, builtins.list[Any]]:
        """The WHERE clause (and its parameters) of a conditional change of one job."""
        where: builtins.list[str] = ["job_id = ?"]
        params: builtins.list[Any] = [job_id]
        if expect.status is not None:
            where.append(f"status IN ({', '.join('?' for _ in expect.status)})")
            params.extend(status.value for status in expect.status)
        if expect.worker_id is not None:
            where.append("worker_id = ?")
            params.append(expect.worker_id)
        if expect.version is not None:
            where.append("version = ?")
            params.append(expect.version)
        if expect.awaiting_tasks is not None:
            where.append("awaiting_tasks = ?")
            params.append(int(expect.awaiting_tasks))
        return " AND ".join(where), params

    async def find_by_idempotency_key(self, owner: str | None, key: str) -> Job | None:
        return self._one(await self._read("SELECT * FROM jobs WHERE owner IS ? AND idempotency_key = ?", (owner, key)))

    async def list_tasks(self, parent_id: str) -> builtins.list[Job]:
        return self._all(
            await self._read("SELECT * FROM jobs WHERE parent_id = ? ORDER BY created_at, job_id", (parent_id,))
        )

    async def list_queued_tasks(self, limit: int = QUEUED_TASKS_BATCH) -> builtins.list[Job]:
        return self._all(await self._read(_QUEUED_TASKS, (limit,)))

    async def list_expired_leases(self, now: datetime, limit: int = 100) -> builtins.list[Job]:
        return self._all(
            await self._read(
                "SELECT * FROM jobs WHERE status = ? AND lease_expires_at < ? ORDER BY lease_expires_at LIMIT ?",
                (JobStatus.PROCESSING.value, format_timestamp(now), limit),
            )
        )

    async def list_webhooks_due(self, now: datetime, limit: int = 100) -> builtins.list[Job]:
        return self._all(
            await self._read(
                "SELECT * FROM jobs WHERE webhook_due_at IS NOT NULL AND webhook_due_at <= ? "
                "ORDER BY webhook_due_at, job_id LIMIT ?",
                (format_timestamp(now), limit),
            )
        )

    async def ping(self) -> None:
        try:
            await self._read("SELECT 1")
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"SQLite job store is not usable: {exc}") from exc

    async def close(self) -> None:
        await self._db.close()
