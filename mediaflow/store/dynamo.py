"""DynamoDB job store (aioboto3), for deployments on AWS or against DynamoDB Local.

Table DB_NAME, partition key `job_id`, created on first use (PAY_PER_REQUEST). Each job is one item
shaped like `Job.to_document()` (fixed-width timestamp strings, enum values) with None fields left
out — Dynamo cannot index NULLs, and a sparse index only holds items that have the key — plus two
helper attributes for ordering:

- `list_pk` = "jobs" (constant) and `created_key` = "<created_at>#<job_id>", so string order of
  `created_key` is the contract's order (created_at, then job_id as tie-breaker).

Global secondary indexes (projection ALL, so a listing is one Query without per-item reads):

- `by_created` (list_pk, created_key): all jobs, newest or oldest first. One constant partition is
  fine at this service's write rate (a GSI partition takes ~1000 writes/s); shard it if that grows.
- `by_status` (status, created_key): listing by status, and expired leases (status = processing,
  filtered on lease_expires_at; processing jobs are few — at most one per running worker).
- `by_owner` (owner, created_key): an owner's jobs; only items with an owner are in it.
- `by_active_owner` (active_owner, created_key): queued and processing jobs per owner, for
  MAX_ACTIVE_JOBS_PER_KEY. Sparse: `active_owner` (a copy of `owner_key`, the owner as JSON) is
  set by the update that makes a job active and removed by the one that ends it.
- `by_parent` (parent_id, created_key): a job's task records. Sparse: only tasks carry parent_id.
  Task items have list_pk = "tasks", so `by_created`'s "jobs" partition never holds them; listings
  through `by_status` and `by_owner` filter them out (`attribute_not_exists(parent_id)`). Tasks carry
  no owner_key: an update that makes one active files it under by_active_owner's "legacy" key, which
  no owner has, so they never count against an owner's active jobs.
- `by_webhook_due` (list_pk, webhook_due_at): the webhook outbox, earliest due first. Sparse: only
  jobs with a final event pending carry webhook_due_at (it is REMOVEd when cleared), so the index
  holds a handful of items however big the table. Added to a table made before it existed
  (UpdateTable, then start-up waits until the index is ACTIVE; on AWS that backfill takes minutes
  for a big table).

Dynamo has no offset: `skip` is honoured by reading and discarding the first `skip` items, so deep
pages cost reads proportional to skip + limit. Fine for a UI that pages a few screens deep; a cursor
(LastEvaluatedKey) API would be the fix if it ever matters. GSIs are eventually consistent on AWS:
a listing can miss a job written milliseconds ago (get() reads consistently).

Idempotency keys are unique per owner through a guard item, job_id = 'idem#["<owner>", "<key>"]'
(JSON, so an owner containing '#' or a null owner cannot collide), written in one TransactWriteItems
with the job, each Put conditional on attribute_not_exists(job_id). Two concurrent creates with the
same key cannot both commit. Guard items have none of the GSI keys, so no listing ever sees them.

Two clients share one AsyncExitStack: the data client keeps aws.py's retries (throttling happens);
a probe client with a single attempt and a 2 s connect timeout serves open() and ping(), because
boto's retries take 8-14 s to give up on an endpoint that refuses connections.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any

import aioboto3
from botocore.exceptions import BotoCoreError, ClientError

from mediaflow.aws import client_kwargs, probe_client_kwargs
from mediaflow.jobs.model import Job, JobStatus, format_timestamp, utcnow
from mediaflow.logs import get_logger
from mediaflow.settings import Settings

from .base import Expect, JobExistsError, StoreUnavailableError, check_changes
from .dynamo_items import (
    INDEX_WAIT_S,
    INDEXES,
    INDEXES_ADDED_LATER,
    LIST_PK,
    TRANSACTION_ATTEMPTS,
    active_owner_change,
    attribute_definitions,
    attribute_value,
    condition_expression,
    error_code,
    idempotency_guard_id,
    index_definition,
    item_from_job,
    job_from_item,
    key_schema_element,
    owner_key,
)
from .dynamo_templates import DynamoTemplateStore
from .dynamo_workers import DynamoWorkerRegistry

log = get_logger("store")


class DynamoJobStore:
    def __init__(self, stack: AsyncExitStack, client: Any, probe: Any, table: str, where: str) -> None:
        self._stack = stack
        self._client = client  # data operations: boto's retries ride out throttling
        self._probe = probe  # open/ping: fail fast with the real reason
        self._table = table
        self._where = where
        self.templates = DynamoTemplateStore(client, f"{table}_templates")
        self.workers = DynamoWorkerRegistry(client, f"{table}_workers")

    @classmethod
    async def open(cls, settings: Settings) -> DynamoJobStore:
        kwargs = client_kwargs(settings, "dynamodb")
        where = settings.dynamodb_endpoint or f"AWS region {settings.AWS_REGION}"
        session = aioboto3.Session()
        stack = AsyncExitStack()
        try:
            client = await stack.enter_async_context(session.client("dynamodb", **kwargs))
            probe = await stack.enter_async_context(
                session.client("dynamodb", **probe_client_kwargs(settings, "dynamodb"))
            )
            store = cls(stack, client, probe, settings.DB_NAME, where)
            await store._ensure_table()
        except BaseException:
            await stack.aclose()
            raise
        return store

    def _unavailable(self, exc: Exception) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"cannot use DynamoDB at {self._where}: {exc}; check DYNAMODB_ENDPOINT_URL (or AWS_ENDPOINT_URL), "
            "AWS_REGION and the AWS credentials"
        )

    async def _ensure_table(self) -> None:
        try:
            try:
                await self._probe.describe_table(TableName=self._table)
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
                await self._create_table()
            waiter = self._client.get_waiter("table_exists")
            await waiter.wait(TableName=self._table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
            present = await self._index_statuses()
            if missing := sorted(set(INDEXES) - set(present) - INDEXES_ADDED_LATER):
                raise StoreUnavailableError(
                    f"DynamoDB table {self._table!r} lacks the indexes {missing}; it was not created by MediaFlow. "
                    "Use another DB_NAME or delete the table."
                )
            for name in sorted(INDEXES_ADDED_LATER - set(present)):  # a table made by an older MediaFlow
                await self._add_index(name)
            await self._wait_until_indexes_active()
            await self.templates.ensure_table()
            await self.workers.ensure_table()
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable(exc) from exc

    async def _index_statuses(self) -> dict[str, str]:
        description = (await self._client.describe_table(TableName=self._table))["Table"]
        indexes = description.get("GlobalSecondaryIndexes", [])
        return {index["IndexName"]: index.get("IndexStatus", "ACTIVE") for index in indexes}

    async def _add_index(self, name: str) -> None:
        try:
            await self._client.update_table(
                TableName=self._table,
                AttributeDefinitions=attribute_definitions(INDEXES[name]),
                GlobalSecondaryIndexUpdates=[{"Create": index_definition(name)}],
            )
        except ClientError as exc:
            # Another process starting at the same time is adding it (the table is being updated, or
            # the index exists already): waiting for it below is all that is left to do.
            message = exc.response.get("Error", {}).get("Message", "")
            if error_code(exc) != "ResourceInUseException" and "already exists" not in message:
                raise
        log.info("store.index_added", table=self._table, index=name)

    async def _wait_until_indexes_active(self) -> None:
        """Queries on an index that is still being built fail: wait (bounded) until every one is ACTIVE."""
        for _ in range(INDEX_WAIT_S // 2):
            if all(status == "ACTIVE" for status in (await self._index_statuses()).values()):
                return
            await asyncio.sleep(2)
        raise StoreUnavailableError(
            f"DynamoDB table {self._table!r}: an index is still being built after "
            f"{INDEX_WAIT_S} s; start again once DescribeTable shows it ACTIVE"
        )

    async def _create_table(self) -> None:
        indexes = [index_definition(name) for name in INDEXES]
        key_names = ["job_id", *(name for keys in INDEXES.values() for name in keys)]
        try:
            await self._client.create_table(
                TableName=self._table,
                BillingMode="PAY_PER_REQUEST",
                KeySchema=[key_schema_element("job_id", "HASH")],
                AttributeDefinitions=attribute_definitions(key_names),
                GlobalSecondaryIndexes=indexes,
            )
        except ClientError as exc:
            # Another process (API and worker starting together) is creating it: the waiter covers us.
            if error_code(exc) != "ResourceInUseException":
                raise

    async def create(self, job: Job) -> None:
        put = {
            "TableName": self._table,
            "Item": item_from_job(job),
            "ConditionExpression": "attribute_not_exists(job_id)",
        }
        if job.idempotency_key is None:
            try:
                await self._client.put_item(**put)
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    raise JobExistsError(job.job_id) from exc
                raise
            return
        guard = {
            "TableName": self._table,
            "Item": {
                "job_id": {"S": idempotency_guard_id(job.owner, job.idempotency_key)},
                "target": {"S": job.job_id},
            },
            "ConditionExpression": "attribute_not_exists(job_id)",
        }
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                await self._client.transact_write_items(TransactItems=[{"Put": put}, {"Put": guard}])
                return
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                codes = {reason.get("Code") for reason in exc.response.get("CancellationReasons", [])}
                if "ConditionalCheckFailed" in codes:  # the job_id or the guard exists
                    raise JobExistsError(job.job_id) from exc
                # Cancelled by a concurrent transaction on the same guard (TransactionConflict):
                # try again; the next attempt sees the winner's guard and fails its condition.
                if "TransactionConflict" not in codes or attempt == TRANSACTION_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(random.uniform(0.01, 0.05) * (attempt + 1))

    async def get(self, job_id: str) -> Job | None:
        response = await self._client.get_item(
            TableName=self._table, Key={"job_id": {"S": job_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        # Guard items live in the same table; only real jobs carry list_pk.
        return job_from_item(item) if item and "list_pk" in item else None

    async def list(
        self,
        *,
        limit: int,
        skip: int = 0,
        status: JobStatus | None = None,
        owner: str | None = None,
        oldest_first: bool = False,
    ) -> list[Job]:
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
        params = {
            "TableName": self._table,
            "IndexName": "by_active_owner",
            "Select": "COUNT",
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": "active_owner"},
            "ExpressionAttributeValues": {":pk": {"S": owner_key(owner)}},
        }
        return await self._count_query(params)

    async def _count_query(self, params: dict[str, Any]) -> int:
        """A Select=COUNT query summed over its pages."""
        total = 0
        while True:
            response = await self._client.query(**params)
            total += response["Count"]
            if "LastEvaluatedKey" not in response:
                return total
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _query_for(self, status: JobStatus | None, owner: str | None, *, with_tasks: bool = False) -> dict[str, Any]:
        """Query parameters for the jobs with this status and/or owner, in created_key order."""
        if owner is not None:  # an owner has fewer jobs than a status has: query by owner, filter by status
            index, key, value = "by_owner", "owner", owner
        elif status is not None:
            index, key, value = "by_status", "status", status.value
        else:
            index, key, value = "by_created", "list_pk", LIST_PK
        params: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": key},
            "ExpressionAttributeValues": {":pk": {"S": value}},
        }
        filters = []
        if (
            index != "by_created" and not with_tasks
        ):  # by_created's "jobs" partition holds no tasks; the other indexes do
            filters.append("attribute_not_exists(#parent)")
            params["ExpressionAttributeNames"]["#parent"] = "parent_id"
        if owner is not None and status is not None:
            filters.append("#status = :status")
            params["ExpressionAttributeNames"]["#status"] = "status"
            params["ExpressionAttributeValues"][":status"] = {"S": status.value}
        if filters:
            params["FilterExpression"] = " AND ".join(filters)
        return params

    async def _collect(self, params: dict[str, Any], wanted: int | None = None) -> list[dict[str, Any]]:
        """Query pages until `wanted` items (None: all) have passed the filter."""
        items: list[dict[str, Any]] = []
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

    async def update(self, job_id: str, changes: Mapping[str, Any], expect: Expect = Expect()) -> Job | None:
        check_changes(changes)
        if expect.status is not None and not expect.status:
            return None  # "one of no statuses" never matches; Dynamo rejects an empty IN ()
        names = {"#version": "version", "#updated_at": "updated_at", "#list_pk": "list_pk"}
        values: dict[str, Any] = {":one": {"N": "1"}, ":now": {"S": format_timestamp(utcnow())}}
        sets, removes = ["#updated_at = :now"], []
        for i, (name, value) in enumerate(changes.items()):
            names[f"#c{i}"] = name
            if value is None:
                removes.append(f"#c{i}")  # no NULLs stored: a missing attribute reads back as None
            else:
                sets.append(f"#c{i} = :c{i}")
                values[f":c{i}"] = attribute_value(value)
        if changes.get("status") is not None:
            set_clause, remove_clause = active_owner_change(changes["status"], names, values)
            sets += [set_clause] if set_clause else []
            removes += [remove_clause] if remove_clause else []
        expression = f"SET {', '.join(sets)} ADD #version :one" + (f" REMOVE {', '.join(removes)}" if removes else "")
        try:
            response = await self._client.update_item(
                TableName=self._table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression=expression,
                ConditionExpression=condition_expression(expect, names, values),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return job_from_item(response["Attributes"])

    async def delete(self, job_id: str, expect: Expect = Expect()) -> bool:
        if expect.status is not None and not expect.status:
            return False
        job = await self.get(job_id)
        if job is None or not expect.matches(job):
            return False
        # On the version just read, so the guard found below is still this job's.
        expect = Expect(status=expect.status, worker_id=expect.worker_id, version=job.version)
        names: dict[str, str] = {"#list_pk": "list_pk", "#version": "version"}
        values: dict[str, Any] = {}
        delete = {
            "TableName": self._table,
            "Key": {"job_id": {"S": job_id}},
            "ConditionExpression": condition_expression(expect, names, values),
            "ExpressionAttributeNames": names,
            **({"ExpressionAttributeValues": values} if values else {}),
        }
        try:
            if job.idempotency_key is None:
                await self._client.delete_item(**delete)
                return True
            # The idempotency guard goes with its job: left behind, it would refuse the key forever.
            guard = {
                "TableName": self._table,
                "Key": {"job_id": {"S": idempotency_guard_id(job.owner, job.idempotency_key)}},
                "ConditionExpression": "#target = :target",
                "ExpressionAttributeNames": {"#target": "target"},
                "ExpressionAttributeValues": {":target": {"S": job_id}},
            }
            await self._client.transact_write_items(TransactItems=[{"Delete": delete}, {"Delete": guard}])
            return True
        except ClientError as exc:
            if error_code(exc) in ("ConditionalCheckFailedException", "TransactionCanceledException"):
                return False
            raise

    async def find_by_idempotency_key(self, owner: str | None, key: str) -> Job | None:
        response = await self._client.get_item(
            TableName=self._table, Key={"job_id": {"S": idempotency_guard_id(owner, key)}}, ConsistentRead=True
        )
        guard = response.get("Item")
        job = await self.get(guard["target"]["S"]) if guard else None
        # The guard is written at create only: should update() change owner or idempotency_key,
        # the job no longer answers to the old pair.
        return job if job and (job.owner, job.idempotency_key) == (owner, key) else None

    async def list_tasks(self, parent_id: str) -> list[Job]:
        params = {
            "TableName": self._table,
            "IndexName": "by_parent",
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": "parent_id"},
            "ExpressionAttributeValues": {":pk": {"S": parent_id}},
        }
        return [job_from_item(item) for item in await self._collect(params)]

    async def list_expired_leases(self, now: datetime, limit: int = 100) -> list[Job]:
        if limit <= 0:
            return []
        # All of them (processing jobs are few), since the result is ordered by lease, not created_key.
        # `<` on a string is false for a missing attribute, so jobs without a lease are left out.
        params = self._query_for(JobStatus.PROCESSING, None, with_tasks=True)  # tasks' leases expire too
        params["FilterExpression"] = "#lease < :now"
        params["ExpressionAttributeNames"]["#lease"] = "lease_expires_at"
        params["ExpressionAttributeValues"][":now"] = {"S": format_timestamp(now)}
        items = await self._collect(params)
        jobs = sorted((job_from_item(item) for item in items), key=lambda job: job.lease_expires_at)
        return jobs[:limit]

    async def list_webhooks_due(self, now: datetime, limit: int = 100) -> list[Job]:
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

    async def ping(self) -> None:
        try:
            await self._probe.describe_table(TableName=self._table)
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable(exc) from exc

    async def close(self) -> None:
        await self._stack.aclose()
