"""Worker presence in DynamoDB: table DB_NAME + "_workers", created on first use beside the jobs table
(as the templates' table is), so no query, count or scan of jobs can meet a presence record.

One item per process under a constant partition key (`pk` = "workers", sort key `worker_id`): `live`
and `prune` are one Query of that partition, which holds the live processes plus those that died since
the last prune, a few hundred items at most however big the jobs table is. Expired items are removed by
`prune`, not by DynamoDB's TTL, whose deletions can lag by days and whose cleanup a test cannot wait for."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from mediaflow.jobs.model import format_timestamp, parse_timestamp

from .dynamo_items import ensure_side_table, error_code
from .workers import MAX_LIVE_WORKERS, WorkerPresence

PARTITION = "workers"
_KEY_NAMES = {"#pk": "pk", "#expires": "expires_at"}


class DynamoWorkerRegistry:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self.table = table

    async def ensure_table(self) -> None:
        await ensure_side_table(self._client, self.table, "pk", "worker_id")

    def _key(self, process_id: str) -> dict:
        return {"pk": {"S": PARTITION}, "worker_id": {"S": process_id}}

    @staticmethod
    def _presence(item: dict) -> WorkerPresence:
        return WorkerPresence(
            process_id=item["worker_id"]["S"],
            host=item["host"]["S"],
            pid=int(item["pid"]["N"]),
            slots=int(item["slots"]["N"]),
            busy=int(item["busy"]["N"]),
            started_at=parse_timestamp(item["started_at"]["S"]),
            seen_at=parse_timestamp(item["seen_at"]["S"]),
            expires_at=parse_timestamp(item["expires_at"]["S"]),
        )

    async def beat(self, presence: WorkerPresence) -> None:
        item = {
            **self._key(presence.process_id),
            "host": {"S": presence.host},
            "pid": {"N": str(presence.pid)},
            "slots": {"N": str(presence.slots)},
            "busy": {"N": str(presence.busy)},
            "started_at": {"S": format_timestamp(presence.started_at)},
            "seen_at": {"S": format_timestamp(presence.seen_at)},
            "expires_at": {"S": format_timestamp(presence.expires_at)},
        }
        await self._client.put_item(TableName=self.table, Item=item)

    async def leave(self, process_id: str) -> bool:
        try:
            await self._client.delete_item(
                TableName=self.table, Key=self._key(process_id), ConditionExpression="attribute_exists(worker_id)"
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    async def _query(self, condition: str, now: datetime, **extra: Any) -> list[dict]:
        """The partition's items matching `condition` on expires_at, page after page (up to MAX_LIVE_WORKERS)."""
        params: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#pk = :pk",
            "FilterExpression": f"#expires {condition} :now",
            "ExpressionAttributeNames": dict(_KEY_NAMES),
            "ExpressionAttributeValues": {":pk": {"S": PARTITION}, ":now": {"S": format_timestamp(now)}},
            "ConsistentRead": True,
            **extra,
        }
        items: list[dict] = []
        while len(items) < MAX_LIVE_WORKERS:
            response = await self._client.query(**params)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return items[:MAX_LIVE_WORKERS]

    async def live(self, now: datetime) -> list[WorkerPresence]:
        found = [self._presence(item) for item in await self._query(">", now)]
        return sorted(found, key=lambda presence: (presence.started_at, presence.process_id))

    async def prune(self, now: datetime) -> int:
        removed = 0
        for item in await self._query("<=", now, ProjectionExpression="worker_id"):
            try:  # only if it has not beaten since it was read
                await self._client.delete_item(
                    TableName=self.table,
                    Key=self._key(item["worker_id"]["S"]),
                    ConditionExpression="#expires <= :now",
                    ExpressionAttributeNames={"#expires": "expires_at"},
                    ExpressionAttributeValues={":now": {"S": format_timestamp(now)}},
                )
                removed += 1
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
        return removed
