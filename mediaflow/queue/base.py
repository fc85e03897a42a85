"""The job queue: tells workers *that* there is work. The job record says *who* does it.

`publish(job_id)` is called after the job is stored; a worker's `receive()` yields a `Delivery` whose
job id it then claims in the store (atomic, conditional). The worker calls `delivery.ack()` once the
job's state is durable (claimed, or found already claimed/finished), so a crash before that point
redelivers the id and a crash after it is recovered through the expired lease.

Backends: `backends/embedded_queue.py` (claims straight from the job store; the default) and
`backends/kafka_queue.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable



class QueueError(Exception):
    """The queue did not accept a job id (e.g. the broker did not confirm delivery in time)."""


class QueueUnavailableError(QueueError):
    """The configured queue cannot be reached or is misconfigured."""


@runtime_checkable
class Delivery(Protocol):
    job_id: str
    headers: Mapping[str, str]  # sent with the job id (Kafka message headers: the trace context); may be empty

    async def ack(self) -> None:
        """Acknowledge (commit) this delivery; call only once the job's state is durable."""


@runtime_checkable
class JobQueue(Protocol):
    async def publish(self, job_id: str, headers: Mapping[str, str] | None = None) -> None:
        """Hand a stored job's id to the workers, with `headers` where the backend carries them (Kafka).
        Raises QueueError if that could not be confirmed."""

    async def receive(self, timeout: float) -> Delivery | None:
        """The next job id to try, or None after `timeout` seconds without one."""

    async def ping(self) -> None:
        """Raise QueueUnavailableError unless the backend answers."""

    async def close(self) -> None: ...
