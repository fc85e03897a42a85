"""The job queue: protocol and errors (`base`), `embedded` and `kafka` backends, and `open_queue`, which
imports a backend only when it is configured."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mediaflow.settings import Settings

from .base import (
    Delivery,
    JobQueue,
    QueueError,
    QueueReport,
    QueueUnavailableError,
)

if TYPE_CHECKING:
    from mediaflow.store import JobStore


async def open_queue(settings: Settings, store: JobStore, *, consumer: bool) -> JobQueue:
    """Open the queue chosen by QUEUE_BACKEND. `consumer=True` for workers (joins the consumer
    group); the API opens it with `consumer=False` and only publishes."""
    if settings.QUEUE_BACKEND == "embedded":
        from mediaflow.queue.embedded import EmbeddedQueue

        return EmbeddedQueue(store, poll_interval=settings.POLL_INTERVAL_S)
    if settings.QUEUE_BACKEND == "kafka":
        from mediaflow.queue.kafka import KafkaQueue

        return await KafkaQueue.open(settings, consumer=consumer)
    raise ValueError(f"unknown QUEUE_BACKEND {settings.QUEUE_BACKEND!r}")


__all__ = [
    "Delivery",
    "JobQueue",
    "QueueError",
    "QueueReport",
    "QueueUnavailableError",
    "open_queue",
]
