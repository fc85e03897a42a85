"""The job queue: tells workers *that* there is work. The job record says *who* does it.

`publish(job_id)` is called after the job is stored; a worker's `receive()` yields a `Delivery` whose
job id it then claims in the store (atomic, conditional). The worker calls `delivery.ack()` once the
job's state is durable (claimed, or found already claimed/finished), so a crash before that point
redelivers the id and a crash after it is recovered through the expired lease.

Backends: `embedded.py` (claims straight from the job store; the default) and `kafka.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class QueueError(Exception):
    """The queue did not accept a job id (e.g. the broker did not confirm delivery in time)."""


class QueueUnavailableError(QueueError):
    """The configured queue cannot be reached or is misconfigured."""


@dataclass(frozen=True)
class QueueReport:
    """What a queue can tell about how work reaches the workers, for /readyz and /metrics.
    `partitions`/`group_members` are None where they do not apply (embedded) or are not known (a broker
    that does not list a group's members)."""

    partitions: int | None = None
    group_members: int | None = None
    details: dict[str, str] = field(default_factory=dict)

    @property
    def members_without_partition(self) -> int | None:
        if self.partitions is None or self.group_members is None:
            return None
        return max(0, self.group_members - self.partitions)


@runtime_checkable
class Delivery(Protocol):
    # Read-only members: a worker reads a delivery, never changes it (a backend may compute them).
    @property
    def job_id(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Sent with the job id (Kafka message headers: the trace context); may be empty."""

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

    async def report(self) -> QueueReport:
        """How work reaches the workers (Kafka: partitions vs consumer group members)."""

    async def close(self) -> None: ...
