"""The webhook dispatcher on a real (SQLite) store, and waiting for what it delivers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest_asyncio

from mediaflow.jobs.events import JobEvents
from mediaflow.jobs.model import Job, JobStatus, Method
from mediaflow.store import open_store
from mediaflow.webhooks.dispatcher import WebhookDispatcher
from tests.apptools import make_settings
from tests.webhook_receiver import SECRET


async def eventually(check: Callable[[], object], what: str, timeout: float = 20) -> object:
    """`check()`'s first truthy value, polled every 50 ms; fails naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest_asyncio.fixture(loop_scope="session")
async def store(tmp_path):
    """One SQLite job store for the dispatcher to record its attempts on."""
    store = await open_store(make_settings(tmp_path))
    yield store
    await store.close()


async def final_job(store, callback_url: str | None, status: JobStatus = JobStatus.COMPLETED) -> Job:
    """A job already in a final status, with `callback_url`, stored."""
    job = Job(
        method_name=Method.COMPRESS, source="clip.mp4", output_format="mp4", status=status, callback_url=callback_url
    )
    await store.create(job)
    return job


def dispatcher_for(store, tmp_path, **overrides) -> tuple[WebhookDispatcher, JobEvents]:
    """A dispatcher signing with the receiver's SECRET, quick to retry, allowed to call loopback
    (the test receiver), listening on a fresh event bus it returns."""
    settings = make_settings(
        tmp_path,
        **{
            "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_ALLOW_PRIVATE": True,
            "WEBHOOK_BACKOFF_BASE_S": 0.05,
            "WEBHOOK_TIMEOUT_S": 2,
            **overrides,
        },
    )
    dispatcher = WebhookDispatcher(settings, store)
    events = JobEvents()
    dispatcher.attach(events)
    return dispatcher, events
