"""The DynamoDB job store's reads through its indexes: listings and counts of jobs, a job's tasks,
queued tasks, expired leases and the webhook outbox. Each is a Query on a GSI, never a scan (the
indexes are described in dynamo.py's docstring). `DynamoJobStore` (dynamo.py) adds records, writes
and table setup to these."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from mediaflow.jobs.model import Job, JobStatus, format_timestamp

from .base import QUEUED_TASKS_BATCH
from .dynamo_items import LIST_PK, TASKS_PK, job_from_item, owner_key


class DynamoQueries:
    _client: Any  # the data client (aioboto3), set by DynamoJobStore
    _table: str

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
            return []
        params = {**self._query_for(status, owner), "ScanIndexForward": oldest_first}
        items = await self._collect(params, wanted=skip + limit)
        return [job_from_item(item) for item in items[skip : skip + limit]]

    async def count(self, *, status: JobStatus | None = None, owner: str | None = None) -> int:
        # Exact, at the price of reading the matching index entries (Select=COUNT returns no items
        # but is billed like a read). DescribeTable's ItemCount is hours stale and counts guards.
        params = {**self._query_for(status, owner), "Select": "COUNT"}
        return await self._count_query(params)

    async def count_active(self, owner: str | None) -> int:
        params = {**self._partition("by_active_owner", "active_owner", owner_key(owner)), "Select": "COUNT"}
        return await self._count_query(params)

    async def list_tasks(self, parent_id: str) -> builtins.list[Job]:
        items = await self._collect(self._partition("by_parent", "parent_id", parent_id))
        return [job_from_item(item) for item in items]

    async def list_queued_tasks(self, limit: int = QUEUED_TASKS_BATCH) -> builtins.list[Job]:
        if limit <= 0:
            return []
        # by_queued's "tasks" partition: the queued tasks and nothing else, oldest created_key first.
        params = {**self._partition("by_queued", "queued_in", TASKS_PK), "ScanIndexForward": True}
        return [job_from_item(item) for item in (await self._collect(params, wanted=limit))[:limit]]

    async def list_expired_leases(self, now: datetime, limit: int = 100) -> builtins.list[Job]:
        if limit <= 0:
            return []
        # All of them (processing jobs are few), since the result is ordered by lease, not created_key.
        # `<` on a string is false for a missing attribute, so jobs without a lease are left out.
        params = self._query_for(JobStatus.PROCESSING, None, with_tasks=True)  # tasks' leases expire too
        params["FilterExpression"] = "#lease < :now"
        params["ExpressionAttributeNames"]["#lease"] = "lease_expires_at"
        params["ExpressionAttributeValues"][":now"] = {"S": format_timestamp(now)}
        items = await self._collect(params)
        jobs = sorted((job_from_item(item) for item in items), key=lambda job: job.lease_expires_at or now)
        return jobs[:limit]

    async def list_webhooks_due(self, now: datetime, limit: int = 100) -> builtins.list[Job]:
        if limit <= 0:
            return []
        params = {
            "TableName": self._table,
            "IndexName": "by_webhook_due",
            "KeyConditionExpression": "#pk = :pk AND #due <= :now",
            "ExpressionAttributeNames": {"#pk": "list_pk", "#due": "webhook_due_at"},
            "ExpressionAttributeValues": {":pk": {"S": LIST_PK}, ":now": {"S": format_timestamp(now)}},
            "ScanIndexForward": True,  # earliest due first (ties in any order)
        }
        return [job_from_item(item) for item in (await self._collect(params, wanted=limit))[:limit]]

    # --- query building and paging ------------------------------------------------------------------

    def _partition(self, index: str, key: str, value: str) -> dict[str, Any]:
        """Query parameters for one partition of an index."""
        return {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": key},
            "ExpressionAttributeValues": {":pk": {"S": value}},
        }

    def _query_for(self, status: JobStatus | None, owner: str | None, *, with_tasks: bool = False) -> dict[str, Any]:
        """Query parameters for the jobs with this status and/or owner, in created_key order."""
        if owner is not None:  # an owner has fewer jobs than a status has: query by owner, filter by status
            params = self._partition("by_owner", "owner", owner)
        elif status is not None:
            params = self._partition("by_status", "status", status.value)
        else:  # by_created's "jobs" partition holds jobs only
            return self._partition("by_created", "list_pk", LIST_PK)
        filters = []
        if not with_tasks:  # by_owner and by_status hold both kinds: keep the jobs
            filters.append("#list_pk = :jobs")
            params["ExpressionAttributeNames"]["#list_pk"] = "list_pk"
            params["ExpressionAttributeValues"][":jobs"] = {"S": LIST_PK}
        if owner is not None and status is not None:
            filters.append("#status = :status")
            params["ExpressionAttributeNames"]["#status"] = "status"
            params["ExpressionAttributeValues"][":status"] = {"S": status.value}
        if filters:
            params["FilterExpression"] = " AND ".join(filters)
        return params

    async def _count_query(self, params: dict[str, Any]) -> int:
        """A Select=COUNT query summed over its pages."""
        total = 0
        while True:
            response = await self._client.query(**params)
            total += response["Count"]
            if "LastEvaluatedKey" not in response:
                return total
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    async def _collect(self, params: dict[str, Any], wanted: int | None = None) -> builtins.list[dict[str, Any]]:
        """Query pages until `wanted` items (None: all) have passed the filter."""
        items: builtins.list[dict[str, Any]] = []
        while True:
            if wanted is not None:
                # Limit counts items read before the filter: without one, read exactly what is
                # missing; with one, read in pages big enough to not crawl.
                missing = wanted - len(items)
                params["Limit"] = max(missing, 100) if "FilterExpression" in params else missing
            response = await self._client.query(**params)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response or (wanted is not None and len(items) >= wanted):
                return items
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
