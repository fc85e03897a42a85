"""Helpers for tests that run the API and workers in-process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from settings import Settings


def make_settings(base: Path, **overrides: Any) -> Settings:
    """Settings for a test: everything under `base`, quick polling, no .env file."""
    (base / "media").mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "SQLITE_PATH": base / "mediaflow.db",
        "LOCAL_STORAGE_DIR": base / "storage",
        "LOCAL_SOURCE_ROOTS": [base / "media"],
        "WORK_DIR": None,
        "POLL_INTERVAL_S": 0.2,
        "PROGRESS_WRITE_INTERVAL_S": 0.2,
        "LEASE_SECONDS": 6,
        "LOG_LEVEL": "WARNING",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def running_app(settings: Settings, api_workers: int = 0) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, and a client talking to it in-process."""
    from main import create_app

    app = create_app(settings, api_workers=api_workers)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mediaflow.test", timeout=30) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


async def wait_for_final(client: httpx.AsyncClient, job_id: str, timeout: float = 60) -> dict:
    """Poll /status until the job is completed, failed or canceled; returns every status seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = (await client.get(f"/status/{job_id}")).json()
        if body["status"] in ("completed", "failed", "canceled"):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish within {timeout} s: {body}")
