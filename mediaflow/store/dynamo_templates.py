"""Saved templates in DynamoDB: table DB_NAME + "_templates", partition key `owner` (JSON: '"alice"', or
'null' when API keys are off, as a key cannot be empty), sort key `name`, created on first use beside
the jobs table."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from mediaflow.jobs.model import format_timestamp, parse_timestamp

from .dynamo_items import ensure_side_table, error_code
from .templates import MAX_TEMPLATES_PER_OWNER, StoredTemplate


class DynamoTemplateStore:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self.table = table

    async def ensure_table(self) -> None:
        await ensure_side_table(self._client, self.table, "owner", "name")

    @staticmethod
    def _template(item: dict) -> StoredTemplate:
        return StoredTemplate(
            name=item["name"]["S"],
            owner=json.loads(item["owner"]["S"]),
            description=item["description"]["S"],
            outputs=item["outputs"]["S"],
            created_at=parse_timestamp(item["created_at"]["S"]),
            updated_at=parse_timestamp(item["updated_at"]["S"]),
        )

    def _key(self, owner: str | None, name: str) -> dict:
        return {"owner": {"S": json.dumps(owner)}, "name": {"S": name}}

    async def get(self, owner: str | None, name: str) -> StoredTemplate | None:
        response = await self._client.get_item(TableName=self.table, Key=self._key(owner, name), ConsistentRead=True)
        return self._template(response["Item"]) if "Item" in response else None

    async def list(self, owner: str | None) -> list[StoredTemplate]:
        response = await self._client.query(
            TableName=self.table,
            KeyConditionExpression="#o = :o",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={":o": {"S": json.dumps(owner)}},
            Limit=MAX_TEMPLATES_PER_OWNER,
            ConsistentRead=True,
        )
        return [self._template(item) for item in response.get("Items", [])]

    async def put(self, template: StoredTemplate, *, create_only: bool) -> bool:
        values = {
            ":d": {"S": template.description},
            ":o": {"S": template.outputs},
            ":u": {"S": format_timestamp(template.updated_at)},
            ":c": {"S": format_timestamp(template.created_at)},
        }
        try:
            await self._client.update_item(
                TableName=self.table,
                Key=self._key(template.owner, template.name),
                UpdateExpression="SET description = :d, outputs = :o, updated_at = :u, created_at = if_not_exists(created_at, :c)",
                ExpressionAttributeValues=values,
                **(
                    {"ConditionExpression": "attribute_not_exists(#n)", "ExpressionAttributeNames": {"#n": "name"}}
                    if create_only
                    else {}
                ),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    async def delete(self, owner: str | None, name: str) -> bool:
        try:
            await self._client.delete_item(
                TableName=self.table,
                Key=self._key(owner, name),
                ConditionExpression="attribute_exists(#n)",
                ExpressionAttributeNames={"#n": "name"},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True
