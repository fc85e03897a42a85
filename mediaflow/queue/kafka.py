"""Kafka queue: the API publishes job ids to KAFKA_TOPIC; each worker slot is one consumer in
KAFKA_CONSUMER_GROUP.

Delivery semantics: a worker acks (commits the offset) right after it claimed the job in the store,
then encodes for minutes without calling `receive()`. The job lease, not the offset, covers the rest
of the run. A consumer that stops polling for longer than max.poll.interval.ms is thrown out of the
group, so this queue polls in the background all the time (see `_poll_forever`), and `receive()`
only hands out what that poll fetched.

librdkafka objects are not driven from the event loop: produce() only enqueues (a background thread
serves delivery reports), and every consumer call runs on the consumer's own single thread, which
also serialises them (a librdkafka consumer is not thread-safe).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from mediaflow.logs import get_logger
from mediaflow.queue.base import QueueError, QueueReport, QueueUnavailableError
from mediaflow.queue.kafka_topic import describe, ensure_topic, raise_partitions_hint, unreachable
from mediaflow.settings import Settings
from mediaflow.settings_groups import KafkaSettings

log = get_logger(__name__)

_PING_TIMEOUT_S = 3.0  # health checks must answer quickly
_POLL_S = 0.1  # the background poll's slice: the longest a commit or close() waits for the thread


_REPORT_TTL_S = 10.0  # /readyz and /metrics describe the topic and group at most this often


class _SharedProducer:
    """The process's one producer (per bootstrap servers): idempotent, acks=all. Every KafkaQueue in
    the process (one per worker slot, plus the API's) shares it; the first open() configures it and
    the last close() flushes it."""

    def __init__(self, kafka: KafkaSettings) -> None:
        timeout_ms = int(kafka.delivery_timeout_s * 1000)
        self.conf = {
            "bootstrap.servers": kafka.bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,  # one job id at a time: latency matters more than batching
            # librdkafka fails the delivery report itself once this passes (broker down, no leader).
            "message.timeout.ms": timeout_ms,
            "request.timeout.ms": min(30_000, timeout_ms),
            "error_cb": self._on_error,
        }
        self.producer = Producer(self.conf)
        self.users = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="kafka-producer", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        # Delivery reports are only delivered from poll(); this thread keeps them flowing.
        while not self._stop.is_set():
            self.producer.poll(0.1)

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            # An idempotent producer can enter a fatal state (e.g. after a broker-side sequence error);
            # it refuses every later message, so replace it rather than fail publishes until restart.
            log.error("kafka.producer_fatal", error=error.str())
            self.producer = Producer(self.conf)

    def close(self, timeout: float) -> int:
        remaining = self.producer.flush(timeout)
        self._stop.set()
        self._thread.join()
        # Destroy the librdkafka handle now: a closed queue object may live on, and the handle
        # would keep reconnecting to the broker in the background.
        del self.producer
        return remaining


_producers: dict[str, _SharedProducer] = {}


def _settle(confirmed: asyncio.Future[KafkaError | None], error: KafkaError | None) -> None:
    if not confirmed.done():  # a publish that timed out has stopped waiting for it
        confirmed.set_result(error)


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


@dataclass
class KafkaDelivery:
    job_id: str
    _queue: KafkaQueue
    _message: Message

    @property
    def headers(self) -> dict[str, str]:
        raw = self._message.headers() or []
        pairs = raw.items() if isinstance(raw, dict) else raw
        return {name: _text(value) for name, value in pairs if value}

    async def ack(self) -> None:
        await self._queue._commit(self._message)


class KafkaQueue:
    def __init__(self, kafka: KafkaSettings, producer: _SharedProducer, consumer: Consumer | None) -> None:
        self._kafka = kafka
        self._topic = kafka.topic
        self._shared = producer
        self._consumer = consumer
        # Every consumer call runs on this one thread (poll, commit, close), in the order submitted.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-consumer") if consumer else None
        self._poller: asyncio.Task | None = None
        # Ids fetched and not yet handed out by receive(), in partition order.
        self._fetched: collections.deque[Message] = collections.deque()
        self._arrived = asyncio.Event()
        self._closed = False
        # Partitions this consumer holds (None until the group assigned it some, or none).
        self.assigned_partitions: int | None = None
        self._report: tuple[float, QueueReport] | None = None

    @classmethod
    async def open(
        cls, settings: Settings, *, consumer: bool, extra_consumer_config: dict[str, Any] | None = None
    ) -> KafkaQueue:
        """Connect (failing within a few seconds if the broker is unreachable), create the topic if
        absent, and with consumer=True join the consumer group. `extra_consumer_config` is merged
        into the consumer's librdkafka configuration (tests use it for max.poll.interval.ms)."""
        kafka = settings.kafka
        await asyncio.to_thread(ensure_topic, kafka)
        shared = _producers.get(kafka.bootstrap_servers)
        if shared is None:
            shared = _producers[kafka.bootstrap_servers] = _SharedProducer(kafka)
        shared.users += 1
        kafka_consumer = None
        if consumer:
            kafka_consumer = Consumer(
                {
                    "bootstrap.servers": kafka.bootstrap_servers,
                    # How long the broker may hold a fetch that has no data yet. A real Kafka broker answers
                    # as soon as one byte arrives (fetch.min.bytes=1), so this only sets the idle fetch rate
                    # there; a broker that waits it out (Tansu) adds it to every job's time in the queue.
                    "fetch.wait.max.ms": kafka.fetch_wait_max_ms,
                    "group.id": kafka.consumer_group,
                    "enable.auto.commit": False,  # commit only after the job is durably claimed
                    "auto.offset.reset": "earliest",  # ids published before the first worker joined
                    "session.timeout.ms": kafka.session_timeout_ms,
                    "heartbeat.interval.ms": kafka.heartbeat_interval_ms,
                    **(extra_consumer_config or {}),
                }
            )
        queue = cls(kafka, shared, kafka_consumer)
        if kafka_consumer is not None:
            kafka_consumer.subscribe([kafka.topic], on_assign=queue._on_assign, on_revoke=queue._on_revoke)
            # Join the group now: by the first receive() the partitions are usually assigned.
            queue._poller = asyncio.get_running_loop().create_task(queue._poll_forever(), name="kafka-poll")
        return queue

    # --- publishing ----------------------------------------------------------------------------

    async def publish(self, job_id: str, headers: Mapping[str, str] | None = None) -> None:
        loop = asyncio.get_running_loop()
        confirmed: asyncio.Future[KafkaError | None] = loop.create_future()

        def on_delivery(error: KafkaError | None, _message: Message) -> None:  # producer thread
            with contextlib.suppress(RuntimeError):  # RuntimeError: the loop is gone, nobody waits
                loop.call_soon_threadsafe(_settle, confirmed, error)

        if self._closed:
            raise QueueError("the Kafka queue is closed")
        timeout = self._kafka.delivery_timeout_s
        what = f"job {job_id} on topic {self._topic!r} at {self._kafka.bootstrap_servers}"
        try:
            # Keyed by job id: ids spread over the partitions, so several consumers share the work.
            self._shared.producer.produce(
                self._topic,
                key=job_id.encode(),
                value=job_id.encode(),
                on_delivery=on_delivery,
                headers=[(name, value.encode()) for name, value in (headers or {}).items()] or None,
            )
        except BufferError as exc:
            raise QueueError(f"could not publish {what}: the local send queue is full ({exc})") from exc
        except KafkaException as exc:
            raise QueueError(f"could not publish {what}: {exc.args[0].str()}") from exc
        try:
            # librdkafka gives up at message.timeout.ms; the extra second only guards against a lost report.
            error = await asyncio.wait_for(confirmed, timeout + 1)
        except TimeoutError:
            raise QueueError(f"Kafka did not confirm {what} within {timeout:g} s; is the broker up?") from None
        if error is not None:
            raise QueueError(
                f"Kafka did not confirm {what}: {error.str()}; check KAFKA_BOOTSTRAP_SERVERS and that the broker is up"
            )

    # --- consuming -----------------------------------------------------------------------------

    async def receive(self, timeout: float) -> KafkaDelivery | None:
        if self._consumer is None or self._closed:
            raise QueueError("this Kafka queue is closed or was opened with consumer=False")
        if self._poller is not None and self._poller.done() and not self._poller.cancelled():
            self._poller.result()  # a fatal consumer error: raise it here, where the worker sees it
        if not self._fetched:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout)
            except TimeoutError:
                return None
        return self._deliver(self._fetched.popleft()) if self._fetched else None

    def _deliver(self, message: Message) -> KafkaDelivery:
        return KafkaDelivery(job_id=(message.value() or b"").decode(), _queue=self, _message=message)

    async def _commit(self, message: Message) -> None:
        """Queue the commit on the consumer thread and return: the job's state is already durable, so
        the worker need not wait for the broker (a crash before the commit only redelivers an id the
        claim check skips). Commits run in order on that thread; close() waits for them."""
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._commit_now, message)
        future.add_done_callback(_log_commit_failure)

    def _commit_now(self, message: Message) -> None:  # consumer thread
        consumer = self._require_consumer()
        topic, index = message.topic(), message.partition()
        if topic is None or index is None or TopicPartition(topic, index) not in consumer.assignment():
            return  # revoked meanwhile: its new owner commits it (the store already decided who runs it)
        try:
            consumer.commit(message=message, asynchronous=False)
        except (KafkaException, RuntimeError) as exc:
            raise QueueError(
                f"could not commit offset {message.offset()} of {message.topic()}[{message.partition()}]: {exc}"
            ) from exc

    def _on_assign(self, consumer: Consumer, partitions: list) -> None:  # consumer thread, inside poll()
        consumer.assign(partitions)
        self.assigned_partitions = len(partitions)
        if not partitions:
            # More members than partitions: the broker sends this worker nothing. Say so, at start-up
            # and at every rebalance that leaves it empty; the store sweep keeps it useful meanwhile.
            log.warning(
                "kafka.no_partition_assigned",
                topic=self._topic,
                consequence="this worker receives no job ids from Kafka; it takes queued jobs from "
                f"the store after QUEUED_SWEEP_AFTER_S={self._kafka.queued_sweep_after_s:g} s",
                fix="more partitions than workers: " + raise_partitions_hint(self._kafka),
            )
        else:
            log.info("kafka.partitions_assigned", topic=self._topic, partitions=len(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list) -> None:  # consumer thread, inside poll()
        consumer.unassign()
        self.assigned_partitions = 0

    def _require_consumer(self) -> Consumer:
        if self._consumer is None:
            raise QueueError("this Kafka queue was opened to publish only (consumer=False); it cannot receive")
        return self._consumer

    async def _poll_forever(self) -> None:
        """Poll all the time, busy or not: heartbeats, rebalances and the max.poll.interval.ms clock
        are served (a worker encoding for hours stays in the group), and an id is in hand the moment
        the broker has it. No pause/resume: resuming waits for a new fetch cycle (measured: ~0.7 s per
        job on Tansu), and pausing never frees a partition for another worker anyway. Ids fetched
        while the worker is busy wait here, in order, for its next receive(); if an idle worker takes
        such a job from the store meanwhile, the claim check skips the id."""
        loop = asyncio.get_running_loop()
        consumer = self._require_consumer()
        while not self._closed:
            message = await loop.run_in_executor(self._executor, consumer.poll, _POLL_S)
            if message is None:
                continue
            if error := message.error():
                if error.fatal():
                    raise QueueError(f"Kafka consumer failed: {error.str()}")
                log.warning("kafka.consumer_error", error=error.str(), topic=self._topic)
                continue
            self._fetched.append(message)
            self._arrived.set()

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args))

    # --- health and shutdown -------------------------------------------------------------------

    async def ping(self) -> None:
        if self._closed:
            raise QueueUnavailableError("the Kafka queue is closed")
        try:
            await asyncio.to_thread(self._shared.producer.list_topics, timeout=_PING_TIMEOUT_S)
        except KafkaException as exc:
            raise unreachable(self._kafka, exc.args[0].str()) from exc

    async def report(self) -> QueueReport:
        """Partitions against group members (cached briefly: /readyz and /metrics may be polled often)."""
        loop = asyncio.get_running_loop()
        if self._report is None or loop.time() - self._report[0] > _REPORT_TTL_S:
            self._report = (loop.time(), await asyncio.to_thread(describe, self._kafka))
        return self._report[1]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._consumer is not None:
            if self._poller is not None:
                await asyncio.gather(self._poller, return_exceptions=True)  # ends after its current poll
            try:
                # Leaves the group at once, so the partitions move to another worker within about
                # session.timeout/2 instead of after a missed session. Uncommitted ids are redelivered.
                await self._run(self._consumer.close)
            finally:
                if self._executor is not None:
                    self._executor.shutdown(wait=False)
        self._shared.users -= 1
        if self._shared.users == 0:
            _producers.pop(self._kafka.bootstrap_servers, None)
            left = await asyncio.to_thread(self._shared.close, self._kafka.delivery_timeout_s)
            if left:
                log.warning("kafka.unflushed_messages", count=left)


def _log_commit_failure(future: asyncio.Future) -> None:
    if not future.cancelled() and (exc := future.exception()) is not None:
        # Only means the id may come again; the claim check makes a redelivery harmless.
        log.warning("queue.ack_failed", error=str(exc))
