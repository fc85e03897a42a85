"""Job stores for contract tests: the `store` fixture runs a test once per backend (SQLite, and the
MongoDB and DynamoDB test servers, started lazily), and a `Job` with the seed's fields filled in."""

from __future__ import annotations

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
