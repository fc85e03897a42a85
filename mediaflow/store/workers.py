"""Worker presence: which worker processes are alive right now, across every machine, and how many jobs
they can run at once. Each process hosting workers beats (worker/presence.py); a record nobody beats for
a while expires, so a killed machine drops out by itself.

`WorkerRegistry` is what each backend offers beside its jobs (`store.workers`), like `store.templates`:
SQLite a table, MongoDB a collection, DynamoDB a table of its own. Presence records never appear among
jobs: no listing, count or sweep of jobs reads where they are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

# More live processes than this is beyond what one listing should carry; the sum of slots would then
# be a floor, which is what "auto" decisions need anyway (more than one slot or not).
MAX_LIVE_WORKERS = 1000


@dataclass(frozen=True)
class WorkerPresence:
    # The process's id, new at every start: "<host>-<pid>-<random>". Stored and served (GET /workers) as
    # `worker_id`; named process_id here so it is not taken for a job's worker_id, which names one slot.
    process_id: str
    host: str
    pid: int
    slots: int  # jobs it runs at once (its WORKER_CONCURRENCY)
    busy: int  # jobs it was running at its last beat
    started_at: datetime
    seen_at: datetime  # its last beat
    expires_at: datetime  # alive until then unless it beats again


@runtime_checkable
class WorkerRegistry(Protocol):
    async def beat(self, presence: WorkerPresence) -> None:
        """Store the process's presence, replacing its previous beat."""

    async def leave(self, process_id: str) -> bool:
        """Remove it (a clean shutdown). False when it was not there."""

    async def live(self, now: datetime) -> list[WorkerPresence]:
        """Processes whose record expires after `now`, oldest started first (at most MAX_LIVE_WORKERS)."""

    async def prune(self, now: datetime) -> int:
        """Remove the records that expired at or before `now` (processes that died without leaving);
        returns how many. Conditional per record, so a process that beats meanwhile stays."""


class HasWorkerRegistry(Protocol):
    @property
    def workers(self) -> WorkerRegistry: ...


async def live_worker_slots(store: HasWorkerRegistry, now: datetime) -> int:
    """Jobs the live workers of every machine can run at once (0 when none is alive). Raises what the
    store raises when it cannot answer: the caller decides what an unknown count means."""
    return sum(presence.slots for presence in await store.workers.live(now))
