"""The presence beat: every process that hosts workers tells the job store it is alive and how many jobs
it can run (`store.workers`, see store/workers.py), so any process can see how many workers are alive
on every machine (GET /workers, `mediaflow_workers_alive`, and the "parallel": "auto" decision).

It beats at start, then every LEASE_SECONDS / 3 (10 s by default), and within a second of a slot
taking up or finishing a job (`wake`), so the busy count is current, not up to a beat old; a record is valid for
LEASE_SECONDS after its beat: the same clock as a job's lease, so a process counted as alive is one
whose leases would still be trusted, and it takes three missed beats in a row to drop out. On a clean
shutdown it leaves at once. Now and then it also removes the records of processes that died without
leaving. A store outage only logs (`presence.pass_failed`): workers never stop for presence's sake.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from mediaflow.jobs.model import utcnow
from mediaflow.logs import get_logger
from mediaflow.store.workers import WorkerPresence, WorkerRegistry
from mediaflow.sweeper import Sweeper

log = get_logger("worker")

PRUNE_EVERY = 6  # beats between two removals of dead processes' records (a minute by default)
LEAVE_TIMEOUT_S = 5.0  # a shutdown never waits longer than this on an unreachable store


class Slot(Protocol):
    @property
    def busy(self) -> bool: ...


def beat_interval_s(lease_seconds: float) -> float:
    return max(lease_seconds / 3, 0.5)


class PresenceBeat(Sweeper):
    name = "presence"
    min_gap_s = 1.0  # many short jobs ending together cost one beat a second, not one each

    def __init__(self, registry: WorkerRegistry, slots: Sequence[Slot], lease_seconds: float) -> None:
        super().__init__()
        self.registry = registry
        self.slots = slots
        self.interval = beat_interval_s(lease_seconds)
        self.valid_for = timedelta(seconds=3 * self.interval)
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.process_id = f"{self.host}-{self.pid}-{uuid.uuid4().hex[:6]}"
        self.started_at = utcnow()
        self._beats = 0

    def interval_s(self) -> float:
        return self.interval

    def presence(self) -> WorkerPresence:
        now = utcnow()
        return WorkerPresence(
            process_id=self.process_id,
            host=self.host,
            pid=self.pid,
            slots=len(self.slots),
            busy=sum(1 for slot in self.slots if slot.busy),
            started_at=self.started_at,
            seen_at=now,
            expires_at=now + self.valid_for,
        )

    async def sweep_once(self) -> None:
        presence = self.presence()
        await self.registry.beat(presence)
        self._beats += 1
        # Every PRUNE_EVERY beats, the first one too: a restarted machine clears its old records soon.
        if self._beats % PRUNE_EVERY == 1 and (removed := await self.registry.prune(presence.seen_at)):
            log.info("presence.pruned", records=removed)

    async def stop(self) -> None:
        """Stop beating and leave, so the process stops counting at once rather than when it expires."""
        was_running = self.running
        await super().stop()
        if not was_running:
            return
        try:
            await asyncio.wait_for(self.registry.leave(self.process_id), LEAVE_TIMEOUT_S)
        except Exception as exc:  # its record expires by itself
            log.warning("presence.leave_failed", error=f"{type(exc).__name__}: {exc}")
