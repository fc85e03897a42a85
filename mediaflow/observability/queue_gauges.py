"""Gauges of how work reaches the workers (`QueueReport`): Kafka partitions against consumer group
members. A group gives each partition to one member, so members beyond the partition count get
nothing from the broker; `mediaflow_kafka_members_without_partition` > 0 is worth an alert."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from mediaflow.logs import get_logger

if TYPE_CHECKING:
    from mediaflow.queue import JobQueue, QueueReport

log = get_logger("metrics")


class QueueGauges(Collector):
    """Refreshed by the /metrics route before rendering (the queue caches its own report)."""

    def __init__(self, timeout_s: float = 5.0) -> None:
        self._timeout_s = timeout_s
        self._report: QueueReport | None = None

    async def refresh(self, queue: JobQueue | None) -> None:
        if queue is None:
            return
        try:
            self._report = await asyncio.wait_for(queue.report(), timeout=self._timeout_s)
        except Exception as exc:  # a scrape never fails because the broker is slow
            log.warning("metrics.queue_report_failed", error=f"{type(exc).__name__}: {exc}")
            self._report = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        report = self._report
        if report is None:
            return
        for name, text, value in (
            ("mediaflow_kafka_topic_partitions", "Partitions of KAFKA_TOPIC", report.partitions),
            (
                "mediaflow_kafka_group_members",
                "Members of KAFKA_CONSUMER_GROUP (when the broker lists them)",
                report.group_members,
            ),
            (
                "mediaflow_kafka_members_without_partition",
                "Consumer group members beyond the partition count: they get no job ids from Kafka",
                report.members_without_partition,
            ),
        ):
            if value is not None:
                yield GaugeMetricFamily(name, text, value=value)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())
