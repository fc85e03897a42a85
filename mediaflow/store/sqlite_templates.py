"""Saved templates in SQLite: a `templates` table beside `jobs`, on the job store's connection."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import aiosqlite

from mediaflow.jobs.model import format_timestamp, parse_timestamp

from .templates import MAX_TEMPLATES_PER_OWNER, StoredTemplate

TABLE = """
CREATE TABLE IF NOT EXISTS templates (
    owner TEXT NOT NULL,  -- '' when API keys are off: "no owner" is one owner here
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    outputs TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (owner, name)
);
"""


class SqliteTemplateStore:
    def __init__(
        self,
        db: aiosqlite.Connection,
        write_lock: asyncio.Lock,
        read: Callable[[str, Any], Awaitable[list[aiosqlite.Row]]],
    ) -> None:
        self._db, self._write_lock, self._read = db, write_lock, read

    @staticmethod
    def _template(row: aiosqlite.Row) -> StoredTemplate:
        return StoredTemplate(
            name=row["name"],
            owner=row["owner"] or None,
            description=row["description"],
            outputs=row["outputs"],
            created_at=parse_timestamp(row["created_at"]),
            updated_at=parse_timestamp(row["updated_at"]),
        )

    async def get(self, owner: str | None, name: str) -> StoredTemplate | None:
        rows = await self._read("SELECT * FROM templates WHERE owner = ? AND name = ?", (owner or "", name))
        return self._template(rows[0]) if rows else None

    async def list(self, owner: str | None) -> list[StoredTemplate]:
        rows = await self._read(
            "SELECT * FROM templates WHERE owner = ? ORDER BY name LIMIT ?", (owner or "", MAX_TEMPLATES_PER_OWNER)
        )
        return [self._template(row) for row in rows]

    async def put(self, template: StoredTemplate, *, create_only: bool) -> bool:
        values = (
            template.owner or "",
            template.name,
            template.description,
            template.outputs,
            format_timestamp(template.created_at),
            format_timestamp(template.updated_at),
        )
        insert = "INSERT INTO templates (owner, name, description, outputs, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
        if not create_only:  # a replaced template keeps its created_at
            insert += (
                " ON CONFLICT (owner, name) DO UPDATE SET description = excluded.description, "
                "outputs = excluded.outputs, updated_at = excluded.updated_at"
            )
        async with self._write_lock:
            try:
                await self._db.execute(insert, values)
                await self._db.commit()
            except sqlite3.IntegrityError:
                await self._db.rollback()
                return False
        return True

    async def delete(self, owner: str | None, name: str) -> bool:
        async with self._write_lock:
            rows = await self._read(
                "DELETE FROM templates WHERE owner = ? AND name = ? RETURNING name", (owner or "", name)
            )
            await self._db.commit()
        return bool(rows)
