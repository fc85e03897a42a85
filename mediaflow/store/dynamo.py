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
  `list_pk` is the record's kind as a key: "jobs" or "tasks", so `by_created`'s "jobs" partition
  never holds a task, `get` answers jobs only, and listings through `by_status` and `by_owner` keep
  `list_pk = "jobs"`. Tasks carry no owner_key: an update that makes one active files it under
  by_active_owner's "legacy" key, which no owner has, so they never count against an owner's jobs.
- `by_queued` (queued_in, created_key): queued records. Sparse: `queued_in` (a copy of list_pk) is
  set while the record is queued and removed by the update that takes it out of the queue, so the
  "tasks" partition holds exactly the queued tasks (`list_queued_tasks`: one Query, oldest first).
  When start-up adds it to an older table, the tasks queued then get `queued_in` at once.
- `by_webhook_due` (list_pk, webhook_due_at): the webhook outbox, earliest due first. Sparse: only
  jobs with a final event pending carry webhook_due_at (it is REMOVEd when cleared), so the index
  holds a handful of items however big the table. Added to a table made before it existed
  (UpdateTable, then start-up waits until the index is ACTIVE; on AWS that backfill takes minutes
  for a big table).

The reads through these indexes are in dynamo_queries.py, the table's setup in dynamo_table.py.

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
from typing import Any

import aioboto3
from botocore.exceptions import BotoCoreError, ClientError

from mediaflow.aws import client_kwargs, probe_client_kwargs
from mediaflow.jobs.model import Job, JobStatus, format_timestamp, utcnow
from mediaflow.settings import Settings

from .base import OLD_TASKS_HOLDER, Expect, JobExistsError, StoreUnavailableError, check_changes
from .dynamo_items import (
    LIST_PK,
    TASKS_PK,
    TRANSACTION_ATTEMPTS,
    active_owner_change,
    attribute_value,
    condition_expression,
    error_code,
    idempotency_guard_id,
    item_from_job,
    job_from_item,
    queued_change,
)
from .dynamo_queries import DynamoQueries
from .dynamo_table import ensure_jobs_table
from .dynamo_templates import DynamoTemplateStore
from .dynamo_workers import DynamoWorkerRegistry


class DynamoJobStore(DynamoQueries):
    """Records and writes here; the reads through indexes in DynamoQueries (dynamo_queries.py)."""

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
            try:
                if "by_queued" in await ensure_jobs_table(client, probe, settings.DB_NAME):
                    await store._upgrade_older_items()  # a table from before record kinds
                await store.templates.ensure_table()
                await store.workers.ensure_table()
            except (BotoCoreError, ClientError) as exc:
                raise store._unavailable(exc) from exc
        except BaseException:
            await stack.aclose()
            raise
        return store

    async def _upgrade_older_items(self) -> None:
        """When by_queued was just added (the table is from before record kinds): the tasks queued
        then get `queued_in`, so list_queued_tasks finds them (queued jobs are found through
        by_status), and a job held by the old sentinel worker awaits its tasks instead."""
        queued = self._query_for(JobStatus.QUEUED, None, with_tasks=True)
        queued["FilterExpression"] = "#list_pk = :tasks AND attribute_not_exists(#queued_in)"
        queued["ExpressionAttributeNames"].update({"#list_pk": "list_pk", "#queued_in": "queued_in"})
        queued["ExpressionAttributeValues"][":tasks"] = {"S": TASKS_PK}
        for item in await self._collect(queued):
            names = {"#queued_in": "queued_in", "#list_pk": "list_pk"}
            await self._upgrade(item, JobStatus.QUEUED, "SET #queued_in = #list_pk", names, {})
        held = self._query_for(JobStatus.PROCESSING, None, with_tasks=True)
        held["FilterExpression"] = "#worker = :holder"
        held["ExpressionAttributeNames"]["#worker"] = "worker_id"
        held["ExpressionAttributeValues"][":holder"] = {"S": OLD_TASKS_HOLDER}
        for item in await self._collect(held):
            names = {"#awaiting": "awaiting_tasks", "#worker": "worker_id"}
            values = {":true": {"BOOL": True}}
            await self._upgrade(item, JobStatus.PROCESSING, "SET #awaiting = :true REMOVE #worker", names, values)

    async def _upgrade(
        self, item: dict[str, Any], status: JobStatus, expression: str, names: dict[str, str], values: dict[str, Any]
    ) -> None:
        """One item's upgrade, conditional on its status still being `status` (so a record that moved
        on meanwhile is left as it is)."""
        try:
            await self._client.update_item(
                TableName=self._table,
                Key={"job_id": item["job_id"]},
                UpdateExpression=expression,
                ConditionExpression="#status = :status",
                ExpressionAttributeNames={**names, "#status": "status"},
                ExpressionAttributeValues={**values, ":status": {"S": status.value}},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def _unavailable(self, exc: Exception) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"cannot use DynamoDB at {self._where}: {exc}; check DYNAMODB_ENDPOINT_URL (or AWS_ENDPOINT_URL), "
            "AWS_REGION and the AWS credentials"
        )

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
        # Guard items and task items live in the same table; only jobs carry list_pk "jobs".
        return job_from_item(item) if item and item.get("list_pk") == {"S": LIST_PK} else None

    async def get_record(self, record_id: str) -> Job | None:
        response = await self._client.get_item(
            TableName=self._table, Key={"job_id": {"S": record_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        return job_from_item(item) if item and "list_pk" in item else None  # guards have none

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
            for set_clause, remove_clause in (
                active_owner_change(changes["status"], names, values),
                queued_change(changes["status"], names),
            ):
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
        job = await self.get_record(job_id)
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

    async def ping(self) -> None:
        try:
            await self._probe.describe_table(TableName=self._table)
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable(exc) from exc

    async def close(self) -> None:
        await self._stack.aclose()
