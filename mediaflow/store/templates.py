"""Saved templates: named lists of outputs, per owner (API key), kept by the job store's backend.

`TemplateStore` is what each backend offers beside its jobs (`store.templates`): SQLite a table, MongoDB
a collection, DynamoDB items under their own key prefix. The outputs are stored as validated JSON text;
the store does not interpret them. Built-in templates are not stored (media/outputs/templates.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

MAX_TEMPLATES_PER_OWNER = 200


@dataclass(frozen=True)
class StoredTemplate:
    name: str
    owner: str | None
    description: str
    outputs: str  # JSON text of the validated outputs
    created_at: datetime
    updated_at: datetime


@runtime_checkable
class TemplateStore(Protocol):
    async def get(self, owner: str | None, name: str) -> StoredTemplate | None: ...

    async def list(self, owner: str | None) -> list[StoredTemplate]:
        """The owner's templates by name (at most MAX_TEMPLATES_PER_OWNER)."""

    async def put(self, template: StoredTemplate, *, create_only: bool) -> bool:
        """Store it (replacing one of the same owner and name unless `create_only`). False when
        `create_only` and the name is taken."""

    async def delete(self, owner: str | None, name: str) -> bool: ...
