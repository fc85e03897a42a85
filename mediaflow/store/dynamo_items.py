"""How a Job is laid out in DynamoDB: the item shape (typed attributes, None left out), the helper
attributes and global secondary indexes that listings use, and `Expect` as a condition expression.
The layout itself is described in dynamo.py's docstring."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from mediaflow.jobs.model import ACTIVE_STATUSES, Job, JobStatus, RecordKind, format_timestamp

from .base import Expect

LIST_PK = "jobs"
TASKS_PK = "tasks"  # task records' list_pk: by_created's "jobs" partition never holds them
LIST_PK_OF = {RecordKind.JOB: LIST_PK, RecordKind.TASK: TASKS_PK}  # the record's kind as an index key
# name -> (partition key, sort key); all string attributes
INDEXES = {
    "by_created": ("list_pk", "created_key"),
    "by_status": ("status", "created_key"),
    "by_owner": ("owner", "created_key"),
    "by_webhook_due": ("list_pk", "webhook_due_at"),
    "by_active_owner": ("active_owner", "created_key"),
    "by_parent": ("parent_id", "created_key"),
    "by_queued": ("queued_in", "created_key"),
}
# Added to an existing table at start-up if it lacks them.
INDEXES_ADDED_LATER = frozenset({"by_webhook_due", "by_active_owner", "by_parent", "by_queued"})
INDEX_WAIT_S = 900  # at most this long for a new index to be built (backfilled) at start-up
TRANSACTION_ATTEMPTS = 5
_serializer, _deserializer = TypeSerializer(), TypeDeserializer()


def error_code(exc: Exception) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def attribute_value(value: Any) -> dict[str, Any]:
    if isinstance(value, datetime):
        value = format_timestamp(value)
    elif hasattr(value, "value"):  # StrEnum
        value = value.value
    elif isinstance(value, float):
        value = Decimal(str(value))  # Dynamo numbers are decimals; str() keeps the shortest repr
    return _serializer.serialize(value)


def item_from_job(job: Job) -> dict[str, Any]:
    document = {k: v for k, v in job.to_document().items() if v is not None}
    document["list_pk"] = LIST_PK_OF[job.record_kind]
    document["created_key"] = f"{document['created_at']}#{job.job_id}"
    if job.status is JobStatus.QUEUED:
        document["queued_in"] = document["list_pk"]
    if job.record_kind is RecordKind.TASK:  # its job counts against the owner's active jobs, not its tasks
        return {name: attribute_value(value) for name, value in document.items()}
    document["owner_key"] = owner_key(job.owner)
    if job.status in ACTIVE_STATUSES:
        document["active_owner"] = document["owner_key"]
    return {name: attribute_value(value) for name, value in document.items()}


def owner_key(owner: str | None) -> str:
    """The owner as an index key: JSON, so no owner (null) is a key of its own and no name collides."""
    return json.dumps(owner)


def active_owner_change(
    status: JobStatus, names: dict[str, str], values: dict[str, Any]
) -> tuple[str | None, str | None]:
    """(SET clause, REMOVE clause) that keep `active_owner` in step with a status change: present,
    a copy of `owner_key`, while the job is queued or processing; absent otherwise. That makes the
    by_active_owner index sparse: it holds the active jobs only, so counting them reads only them."""
    names["#active_owner"] = "active_owner"
    if JobStatus(status) not in ACTIVE_STATUSES:
        return None, "#active_owner"
    # Items written before owner_key existed get a key no owner has: they are not counted.
    names["#owner_key"], values[":no_owner_key"] = "owner_key", {"S": "legacy"}
    return "#active_owner = if_not_exists(#owner_key, :no_owner_key)", None


def queued_change(status: JobStatus, names: dict[str, str]) -> tuple[str | None, str | None]:
    """(SET clause, REMOVE clause) that keep `queued_in` in step with a status change: present, a copy
    of `list_pk` ("jobs" or "tasks"), while the record is queued; absent otherwise. That makes by_queued
    sparse, and its "tasks" partition holds exactly the queued tasks (list_queued_tasks)."""
    names["#queued_in"] = "queued_in"
    if JobStatus(status) is not JobStatus.QUEUED:
        return None, "#queued_in"
    return "#queued_in = #list_pk", None  # every job and task item has list_pk (the condition checks it)


def job_from_item(item: dict[str, Any]) -> Job:
    document = {}
    for name, raw in item.items():
        value = _deserializer.deserialize(raw)
        if isinstance(value, Decimal):
            value = int(value) if value == value.to_integral_value() else float(value)
        document[name] = value
    return Job.from_document(document)  # absent optional fields default to None


def key_schema_element(name: str, kind: str) -> dict[str, str]:
    return {"AttributeName": name, "KeyType": kind}


def index_definition(name: str) -> dict[str, Any]:
    partition, sort = INDEXES[name]
    return {
        "IndexName": name,
        "KeySchema": [key_schema_element(partition, "HASH"), key_schema_element(sort, "RANGE")],
        "Projection": {"ProjectionType": "ALL"},
    }


def attribute_definitions(names: Any) -> list[dict[str, str]]:
    return [{"AttributeName": name, "AttributeType": "S"} for name in sorted(set(names))]


def condition_expression(expect: Expect, names: dict[str, str], values: dict[str, Any]) -> str:
    """The ConditionExpression of a conditional change of one job (adding what it uses to `names`
    and `values`, which must map #list_pk and #version already)."""
    # Jobs and tasks carry list_pk, idempotency guard items do not: changes never touch a guard.
    conditions = ["attribute_exists(job_id)", "attribute_exists(#list_pk)"]
    if expect.status is not None:
        statuses = {f":s{i}": {"S": status.value} for i, status in enumerate(sorted(expect.status))}
        names["#status"] = "status"
        values.update(statuses)
        conditions.append(f"#status IN ({', '.join(statuses)})")
    if expect.worker_id is not None:
        names["#worker_id"], values[":worker_id"] = "worker_id", {"S": expect.worker_id}
        conditions.append("#worker_id = :worker_id")
    if expect.version is not None:
        values[":version"] = {"N": str(expect.version)}
        conditions.append("#version = :version")
    if expect.awaiting_tasks is not None:
        names["#awaiting"], values[":awaiting"] = "awaiting_tasks", {"BOOL": True}
        # Items stored before the field existed have none: not awaiting tasks.
        conditions.append("#awaiting = :awaiting" if expect.awaiting_tasks else "NOT #awaiting = :awaiting")
    return " AND ".join(conditions)


def idempotency_guard_id(owner: str | None, key: str) -> str:
    return "idem#" + json.dumps([owner, key])


async def ensure_side_table(client: Any, table: str, partition: str, sort: str) -> None:
    """Create (when absent) and wait for a table kept beside the jobs table (templates, worker presence):
    string partition and sort keys, PAY_PER_REQUEST. Several processes starting at once are fine."""
    try:
        await client.describe_table(TableName=table)
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        try:
            await client.create_table(
                TableName=table,
                BillingMode="PAY_PER_REQUEST",
                KeySchema=[key_schema_element(partition, "HASH"), key_schema_element(sort, "RANGE")],
                AttributeDefinitions=attribute_definitions([partition, sort]),
            )
        except ClientError as exc2:
            if error_code(exc2) != "ResourceInUseException":  # another process is creating it
                raise
    waiter = client.get_waiter("table_exists")
    await waiter.wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
