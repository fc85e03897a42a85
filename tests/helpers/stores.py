"""Job stores for contract tests: the `store` fixture runs a test once per backend (SQLite, and the
MongoDB and DynamoDB test servers, started lazily), and a `Job` with the seed's fields filled in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from mediaflow import store as db
from mediaflow.jobs.model import Job, Method
from mediaflow.settings import Settings

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("mongodb", id="mongodb", marks=pytest.mark.backend),
    pytest.param("dynamodb", id="dynamodb", marks=pytest.mark.backend),
]
SERVER_SETTINGS = {"mongodb": "mongo_settings", "dynamodb": "dynamo_settings"}


def backend_overrides(request: pytest.FixtureRequest, backend: str, tmp_path) -> dict:
    """The settings that point MediaFlow at `backend`'s store."""
    if backend == "sqlite":
        return {"DB_BACKEND": "sqlite", "SQLITE_PATH": str(tmp_path / "jobs.db")}
    # Lazily: a server starts only when one of its tests runs.
    return request.getfixturevalue(SERVER_SETTINGS[backend])


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path):
    settings = Settings(_env_file=None, **backend_overrides(request, request.param, tmp_path))
    opened = await db.open_store(settings)
    try:
        yield opened
    finally:
        await opened.close()


# A fixed, microsecond-precise instant: stores must round-trip it exactly.
T0 = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)


def make_job(**fields) -> Job:
    defaults = {"method_name": Method.COMPRESS, "source": "media/in.mp4", "output_format": "mp4"}
    return Job(**{**defaults, **fields})


async def create_older_dynamo_table(settings: Settings, items: Sequence[dict] = ()) -> None:
    """The jobs table as an older MediaFlow made it (the three listing indexes, none added since), with
    `items` in it: what start-up must upgrade in place."""
    import aioboto3

    from mediaflow.aws import client_kwargs

    def index(name: str, partition: str) -> dict:
        return {
            "IndexName": name,
            "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [
                {"AttributeName": partition, "KeyType": "HASH"},
                {"AttributeName": "created_key", "KeyType": "RANGE"},
            ],
        }

    async with aioboto3.Session().client("dynamodb", **client_kwargs(settings, "dynamodb")) as client:
        await client.create_table(
            TableName=settings.DB_NAME,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"}
                for name in ("job_id", "created_key", "list_pk", "status", "owner")
            ],
            GlobalSecondaryIndexes=[
                index("by_created", "list_pk"),
                index("by_status", "status"),
                index("by_owner", "owner"),
            ],
        )
        for item in items:
            await client.put_item(TableName=settings.DB_NAME, Item=item)
