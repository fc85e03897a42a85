"""Gauges of the workers alive on every machine, from their presence beats in the job store
(store/workers.py): `mediaflow_workers_alive` (processes), `mediaflow_worker_slots_alive` (jobs they can
run at once) and `mediaflow_worker_slots_busy`. Unlike `mediaflow_workers`, which each process reports
for itself, these are the whole deployment's, so scrape them from one API process, not summed.

Refreshed by the /metrics route before rendering, at most once per `ttl_s`; when the store cannot answer,
the gauges are left out of the scrape (`mediaflow_store_up` says why) rather than showing stale numbers."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from mediaflow.jobs.model import utcnow
from mediaflow.logs import get_logger

if TYPE_CHECKING:
    from mediaflow.store import JobStore

log = get_logger("metrics")


class PresenceGauges(Collector):
    def __init__(self, ttl_s: float = 2.0, timeout_s: float = 5.0) -> None:
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._totals: tuple[int, int, int] | None = None  # processes, slots, busy slots
        self._refreshed_at = -math.inf
        self._lock = asyncio.Lock()

    async def refresh(self, store: JobStore | None) -> None:
        async with self._lock:  # concurrent scrapes share one read
            if store is None or time.monotonic() - self._refreshed_at < self._ttl_s:
                return
            try:
                live = await asyncio.wait_for(store.workers.live(utcnow()), timeout=self._timeout_s)
                self._totals = (len(live), sum(p.slots for p in live), sum(p.busy for p in live))
            except Exception as exc:  # a scrape never fails because the store is slow or away
                log.warning("metrics.workers_alive_unavailable", error=f"{type(exc).__name__}: {exc}")
                self._totals = None
            self._refreshed_at = time.monotonic()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self._totals is None:
            return
        processes, slots, busy = self._totals
        yield GaugeMetricFamily(
            "mediaflow_workers_alive", "Worker processes alive on every machine (presence beats)", value=processes
        )
        yield GaugeMetricFamily(
            "mediaflow_worker_slots_alive", "Jobs the live worker processes can run at once", value=slots
        )
        yield GaugeMetricFamily(
            "mediaflow_worker_slots_busy", "Jobs the live worker processes were running at their last beats", value=busy
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())
