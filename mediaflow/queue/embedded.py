"""Embedded queue: no broker. Workers find queued jobs straight in the job store (oldest first) and
then claim them like any other delivery; the conditional claim is what keeps two workers off the
same job. In-process publishes wake waiting workers at once; other processes are found by polling."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from mediaflow.jobs.model import JobStatus
from mediaflow.queue.base import QueueReport
from mediaflow.store import JobStore


@dataclass
class StoreDelivery:
    job_id: str
    headers: Mapping[str, str] = field(default_factory=dict)  # none: a worker reads the trace context from the job

    async def ack(self) -> None:
        # Nothing to acknowledge: the job record itself is the queue.
        return None


class EmbeddedQueue:
    # Look at a few queued jobs at a time, and hand them out one by one, so that concurrent workers
    # mostly try different jobs instead of racing for the oldest one.
    _BATCH = 8

    def __init__(self, store: JobStore, poll_interval: float = 1.0) -> None:
        self._store = store
        self._poll_interval = poll_interval
        self._wakeup = asyncio.Event()
        self._candidates: list[str] = []

    async def publish(self, job_id: str, headers: Mapping[str, str] | None = None) -> None:
        self._wakeup.set()

    async def receive(self, timeout: float) -> StoreDelivery | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if not self._candidates:
                queued = await self._store.list(limit=self._BATCH, status=JobStatus.QUEUED, oldest_first=True)
                # Task records are left out of `list`; only asked when no job is queued, so jobs go first.
                self._candidates = [job.job_id for job in queued] or [
                    task.job_id for task in await self._store.list_queued_tasks(limit=self._BATCH)
                ]
            if self._candidates:
                return StoreDelivery(self._candidates.pop(0))
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=min(self._poll_interval, remaining))

    async def ping(self) -> None:
        await self._store.ping()

    async def report(self) -> QueueReport:
        return QueueReport()  # every worker reads the store: none can be left without work

    async def close(self) -> None:
        return None
