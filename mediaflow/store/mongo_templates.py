"""Saved templates in MongoDB: one document per (owner, name) in MONGO_JOBS_COLLECTION + "_templates"."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from mediaflow.jobs.model import format_timestamp, parse_timestamp

from .templates import MAX_TEMPLATES_PER_OWNER, StoredTemplate

INDEXES = [IndexModel([("owner", ASCENDING), ("name", ASCENDING)], name="by_owner_name", unique=True)]
_NO_ID = {"_id": False}


class MongoTemplateStore:
    def __init__(self, collection: Any) -> None:
        self._templates = collection

    async def create_indexes(self) -> None:
        await self._templates.create_indexes(INDEXES)

    @staticmethod
    def _template(document: dict) -> StoredTemplate:
        return StoredTemplate(
            name=document["name"],
            owner=document["owner"] or None,
            description=document["description"],
            outputs=document["outputs"],
            created_at=parse_timestamp(document["created_at"]),
            updated_at=parse_timestamp(document["updated_at"]),
        )

    async def get(self, owner: str | None, name: str) -> StoredTemplate | None:
        document = await self._templates.find_one({"owner": owner or "", "name": name}, _NO_ID)
        return self._template(document) if document else None

    async def list(self, owner: str | None) -> list[StoredTemplate]:
        cursor = (
            self._templates.find({"owner": owner or ""}, _NO_ID).sort("name", ASCENDING).limit(MAX_TEMPLATES_PER_OWNER)
        )
        return [self._template(document) async for document in cursor]

    async def put(self, template: StoredTemplate, *, create_only: bool) -> bool:
        key = {"owner": template.owner or "", "name": template.name}
        fields = {
            "description": template.description,
            "outputs": template.outputs,
            "updated_at": format_timestamp(template.updated_at),
        }
        if create_only:
            try:
                await self._templates.insert_one({**key, **fields, "created_at": format_timestamp(template.created_at)})
            except DuplicateKeyError:
                return False
            return True
        await self._templates.find_one_and_update(
            key,
            {"$set": fields, "$setOnInsert": {"created_at": format_timestamp(template.created_at)}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return True

    async def delete(self, owner: str | None, name: str) -> bool:
        result = await self._templates.delete_one({"owner": owner or "", "name": name})
        return result.deleted_count == 1
