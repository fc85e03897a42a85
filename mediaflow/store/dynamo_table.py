"""Setting up the DynamoDB jobs table: create it on first use, add the indexes a table made by an
older MediaFlow lacks, refuse a table MediaFlow did not make, and wait until every index is ACTIVE
(a query on an index still being built fails). The layout itself is in dynamo.py's docstring."""

from __future__ import annotations

import asyncio
from typing import Any

from botocore.exceptions import ClientError

from mediaflow.logs import get_logger

from .base import StoreUnavailableError
from .dynamo_items import (
    INDEX_WAIT_S,
    INDEXES,
    INDEXES_ADDED_LATER,
    attribute_definitions,
    error_code,
    index_definition,
    key_schema_element,
)

log = get_logger("store")


async def ensure_jobs_table(client: Any, probe: Any, table: str) -> frozenset[str]:
    """Make `table` ready for the job store; returns the indexes it added to an older table (whose
    items may need the new key). Raises StoreUnavailableError (or boto's errors)."""
    try:
        await probe.describe_table(TableName=table)
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        await _create_table(client, table)
    waiter = client.get_waiter("table_exists")
    await waiter.wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    present = await _index_statuses(client, table)
    if missing := sorted(set(INDEXES) - set(present) - INDEXES_ADDED_LATER):
        raise StoreUnavailableError(
            f"DynamoDB table {table!r} lacks the indexes {missing}; it was not created by MediaFlow. "
            "Use another DB_NAME or delete the table."
        )
    added = INDEXES_ADDED_LATER - set(present)
    for name in sorted(added):  # a table made by an older MediaFlow
        await _add_index(client, table, name)
    await _wait_until_indexes_active(client, table)
    return added


async def _create_table(client: Any, table: str) -> None:
    indexes = [index_definition(name) for name in INDEXES]
    key_names = ["job_id", *(name for keys in INDEXES.values() for name in keys)]
    try:
        await client.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[key_schema_element("job_id", "HASH")],
            AttributeDefinitions=attribute_definitions(key_names),
            GlobalSecondaryIndexes=indexes,
        )
    except ClientError as exc:
        # Another process (API and worker starting together) is creating it: the waiter covers us.
        if error_code(exc) != "ResourceInUseException":
            raise


async def _index_statuses(client: Any, table: str) -> dict[str, str]:
    description = (await client.describe_table(TableName=table))["Table"]
    indexes = description.get("GlobalSecondaryIndexes", [])
    return {index["IndexName"]: index.get("IndexStatus", "ACTIVE") for index in indexes}


async def _add_index(client: Any, table: str, name: str) -> None:
    # DynamoDB builds one index at a time per UpdateTable: wait for the previous one first.
    await _wait_until_indexes_active(client, table)
    try:
        await client.update_table(
            TableName=table,
            AttributeDefinitions=attribute_definitions(INDEXES[name]),
            GlobalSecondaryIndexUpdates=[{"Create": index_definition(name)}],
        )
    except ClientError as exc:
        # Another process starting at the same time is adding it (the table is being updated, or
        # the index exists already): waiting for it afterwards is all that is left to do.
        message = exc.response.get("Error", {}).get("Message", "")
        if error_code(exc) != "ResourceInUseException" and "already exists" not in message:
            raise
    log.info("store.index_added", table=table, index=name)


async def _wait_until_indexes_active(client: Any, table: str) -> None:
    """Bounded: a table whose index is still being built after INDEX_WAIT_S is reported, not waited for."""
    for _ in range(INDEX_WAIT_S // 2):
        if all(status == "ACTIVE" for status in (await _index_statuses(client, table)).values()):
            return
        await asyncio.sleep(2)
    raise StoreUnavailableError(
        f"DynamoDB table {table!r}: an index is still being built after "
        f"{INDEX_WAIT_S} s; start again once DescribeTable shows it ACTIVE"
    )
