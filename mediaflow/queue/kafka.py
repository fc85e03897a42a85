"""Kafka queue: the API publishes job ids to KAFKA_TOPIC; each worker slot is one consumer in
KAFKA_CONSUMER_GROUP.

Delivery semantics: a worker acks (commits the offset) right after it claimed the job in the store,
then encodes for minutes without calling `receive()`. The job lease, not the offset, covers the rest
of the run. A consumer that stops polling for longer than max.poll.interval.ms is thrown out of the
group, so between `receive()` calls this queue keeps polling in the background with every assigned
partition paused: nothing is fetched, but the consumer stays a healthy member and its ack succeeds.

librdkafka objects are not driven from the event loop: produce() only enqueues (a background thread
serves delivery reports), and every consumer call runs on the consumer's own single thread, which
also serialises them (a librdkafka consumer is not thread-safe).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

from mediaflow.logs import get_logger
from mediaflow.queue.kafka_topic import raise_partitions_hint, ensure_topic, describe, unreachable
from mediaflow.queue.base import QueueError, QueueReport, QueueUnavailableError
from mediaflow.settings import Settings

log = get_logger(__name__)

_PING_TIMEOUT_S = 3.0  # health checks must answer quickly
_RECEIVE_POLL_S = 0.5  # receive() polls in slices so close() never waits long for the thread
_KEEPALIVE_POLL_S = 0.2  # also the longest an ack or the next receive() waits for the keep-alive


_REPORT_TTL_S = 10.0  # /readyz and /metrics describe the topic and group at most this often
class _SharedProducer:
    """The process's one producer (per bootstrap servers): idempotent, acks=all. Every KafkaQueue in
    the process (one per worker slot, plus the API's) shares it; the first open() configures it and
    the last close() flushes it."""

    def __init__(self, settings: Settings) -> None:
        timeout_ms = int(settings.KAFKA_DELIVERY_TIMEOUT_S * 1000)
        self.conf = {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
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


@dataclass
class KafkaDelivery:
    job_id: str
    _queue: "KafkaQueue"
    _message: Message

    async def ack(self) -> None:
        await self._queue._commit(self._message)


class KafkaQueue:
    def __init__(self, settings: Settings, producer: _SharedProducer, consumer: Consumer | None) -> None:
        self._settings = settings
        self._topic = settings.KAFKA_TOPIC
        self._shared = producer
        self._consumer = consumer
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-consumer") if consumer else None
        self._receiving = False  # read by on_assign on the consumer thread
        self._keepalive: asyncio.Task | None = None
        self._keep_polling = False
        # A message the consumer thread returned after its caller went away (cancelled receive, or
        # a fetch that slipped through the pause): handed out by the next receive(), never dropped.
        self._pending: collections.deque[Message] = collections.deque()
        self._closed = False
        # Partitions this consumer holds (None until the group assigned it some, or none).
        self.assigned_partitions: int | None = None
        self._report: tuple[float, QueueReport] | None = None

    @classmethod
    async def open(
        cls, settings: Settings, *, consumer: bool, extra_consumer_config: dict[str, Any] | None = None
    ) -> "KafkaQueue":
        """Connect (failing within a few seconds if the broker is unreachable), create the topic if
        absent, and with consumer=True join the consumer group. `extra_consumer_config` is merged
        into the consumer's librdkafka configuration (tests use it for max.poll.interval.ms)."""
        await asyncio.to_thread(ensure_topic, settings)
        shared = _producers.get(settings.KAFKA_BOOTSTRAP_SERVERS)
        if shared is None:
            shared = _producers[settings.KAFKA_BOOTSTRAP_SERVERS] = _SharedProducer(settings)
        shared.users += 1
        kafka_consumer = None
        if consumer:
            kafka_consumer = Consumer({
                "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
                "group.id": settings.KAFKA_CONSUMER_GROUP,
                "enable.auto.commit": False,  # commit only after the job is durably claimed
                "auto.offset.reset": "earliest",  # ids published before the first worker joined
                "session.timeout.ms": settings.KAFKA_SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": settings.KAFKA_HEARTBEAT_INTERVAL_MS,
                **(extra_consumer_config or {}),
            })
        queue = cls(settings, shared, kafka_consumer)
        if kafka_consumer is not None:
            kafka_consumer.subscribe([settings.KAFKA_TOPIC], on_assign=queue._on_assign, on_revoke=queue._on_revoke)
            # Join the group now (paused): by the first receive() the partitions are usually assigned.
            queue._start_keepalive()
        return queue

    # --- publishing ----------------------------------------------------------------------------

    async def publish(self, job_id: str) -> None:
        loop = asyncio.get_running_loop()
        confirmed: asyncio.Future[KafkaError | None] = loop.create_future()

        def on_delivery(error: KafkaError | None, _message: Message) -> None:  # producer thread
            with contextlib.suppress(RuntimeError):  # RuntimeError: the loop is gone, nobody waits
                loop.call_soon_threadsafe(lambda: confirmed.done() or confirmed.set_result(error))

        if self._closed:
            raise QueueError("the Kafka queue is closed")
        timeout = self._settings.KAFKA_DELIVERY_TIMEOUT_S
        what = f"job {job_id} on topic {self._topic!r} at {self._settings.KAFKA_BOOTSTRAP_SERVERS}"
        try:
            # Keyed by job id: ids spread over the partitions, so several consumers share the work.
            self._shared.producer.produce(self._topic, key=job_id.encode(), value=job_id.encode(), on_delivery=on_delivery)
        except BufferError as exc:
            raise QueueError(f"could not publish {what}: the local send queue is full ({exc})") from exc
        except KafkaException as exc:
            raise QueueError(f"could not publish {what}: {exc.args[0].str()}") from exc
        try:
            # librdkafka gives up at message.timeout.ms; the extra second only guards against a lost report.
            error = await asyncio.wait_for(confirmed, timeout + 1)
        except asyncio.TimeoutError:
            raise QueueError(f"Kafka did not confirm {what} within {timeout:g} s; is the broker up?") from None
        if error is not None:
            raise QueueError(
                f"Kafka did not confirm {what}: {error.str()}; check KAFKA_BOOTSTRAP_SERVERS and that the broker is up"
            )

    # --- consuming -----------------------------------------------------------------------------

    async def receive(self, timeout: float) -> KafkaDelivery | None:
        if self._consumer is None or self._closed:
            raise QueueError("this Kafka queue is closed or was opened with consumer=False")
        await self._stop_keepalive()
        self._receiving = True
        try:
            if self._pending:
                return self._deliver(self._pending.popleft())
            await self._run(self._set_paused, False)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while (remaining := deadline - loop.time()) > 0:
                message = await self._poll(min(remaining, _RECEIVE_POLL_S))
                if message is not None:
                    return self._deliver(message)
            return None
        finally:
            self._receiving = False
            if not self._closed:
                self._start_keepalive()  # pauses the partitions before polling

    def _deliver(self, message: Message) -> KafkaDelivery:
        return KafkaDelivery(job_id=message.value().decode(), _queue=self, _message=message)

    async def _commit(self, message: Message) -> None:
        try:
            await self._run(partial(self._consumer.commit, message=message, asynchronous=False))
        except (KafkaException, RuntimeError) as exc:
            # The job state is already durable; a redelivery of this id will find it claimed.
            raise QueueError(
                f"could not commit offset {message.offset()} of {message.topic()}[{message.partition()}]: {exc}"
            ) from exc

    def _on_assign(self, consumer: Consumer, partitions: list) -> None:  # consumer thread, inside poll()
        # Assign explicitly (confluent-kafka would otherwise do it after this callback) so that the
        # new partitions can be paused at once when a rebalance happens while the worker is busy.
        consumer.assign(partitions)
        if not self._receiving:
            consumer.pause(partitions)
        self.assigned_partitions = len(partitions)
        if not partitions:
            # More members than partitions: the broker sends this worker nothing. Say so, at start-up
            # and at every rebalance that leaves it empty; the store sweep keeps it useful meanwhile.
            log.warning("kafka.no_partition_assigned", topic=self._topic,
                        consequence="this worker receives no job ids from Kafka; it takes queued jobs from "
                                    f"the store after QUEUED_SWEEP_AFTER_S={self._settings.QUEUED_SWEEP_AFTER_S:g} s",
                        fix="more partitions than workers: " + raise_partitions_hint(self._settings))
        else:
            log.info("kafka.partitions_assigned", topic=self._topic, partitions=len(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list) -> None:  # consumer thread, inside poll()
        consumer.unassign()
        self.assigned_partitions = 0

    def _set_paused(self, paused: bool) -> None:  # consumer thread
        partitions = self._consumer.assignment()
        if partitions:
            (self._consumer.pause if paused else self._consumer.resume)(partitions)

    async def _poll(self, timeout: float) -> Message | None:
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._consumer.poll, timeout)
        try:
            message = await asyncio.shield(future)
        except asyncio.CancelledError:
            # The poll finishes on its thread anyway: keep what it returns for the next receive().
            def keep(done: asyncio.Future) -> None:
                message = None if done.cancelled() or done.exception() else done.result()
                if message is not None and not message.error():
                    self._pending.append(message)

            future.add_done_callback(keep)
            raise
        if message is None:
            return None
        if error := message.error():
            if error.fatal():
                raise QueueError(f"Kafka consumer failed: {error.str()}")
            log.warning("kafka.consumer_error", error=error.str(), topic=self._topic)
            return None
        return message

    def _start_keepalive(self) -> None:
        self._keep_polling = True
        self._keepalive = asyncio.get_running_loop().create_task(self._keep_alive(), name="kafka-keepalive")

    async def _stop_keepalive(self) -> None:
        self._keep_polling = False
        if self._keepalive is not None:
            task, self._keepalive = self._keepalive, None
            try:
                await task
            except Exception as exc:  # noqa: BLE001 - a fatal error shows up again in receive()
                log.warning("kafka.keepalive_failed", error=str(exc))

    async def _keep_alive(self) -> None:
        """Poll with every partition paused: fetches nothing, but heartbeats, rebalances and the
        max.poll.interval.ms clock are all served, so a worker busy for hours stays in the group."""
        await self._run(self._set_paused, True)
        while self._keep_polling:
            if message := await self._poll(_KEEPALIVE_POLL_S):
                self._pending.append(message)  # fetched before the pause took effect

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args))

    # --- health and shutdown -------------------------------------------------------------------

    async def ping(self) -> None:
        if self._closed:
            raise QueueUnavailableError("the Kafka queue is closed")
        try:
            await asyncio.to_thread(self._shared.producer.list_topics, timeout=_PING_TIMEOUT_S)
        except KafkaException as exc:
            raise unreachable(self._settings, exc.args[0].str()) from exc

    async def report(self) -> QueueReport:
        """Partitions against group members (cached briefly: /readyz and /metrics may be polled often)."""
        loop = asyncio.get_running_loop()
        if self._report is None or loop.time() - self._report[0] > _REPORT_TTL_S:
            self._report = (loop.time(), await asyncio.to_thread(describe, self._settings))
        return self._report[1]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._consumer is not None:
            await self._stop_keepalive()
            try:
                # Leaves the group at once, so the partitions move to another worker within about
                # session.timeout/2 instead of after a missed session. Uncommitted ids are redelivered.
                await self._run(self._consumer.close)
            finally:
                self._executor.shutdown(wait=False)
        self._shared.users -= 1
        if self._shared.users == 0:
            _producers.pop(self._settings.KAFKA_BOOTSTRAP_SERVERS, None)
            left = await asyncio.to_thread(self._shared.close, self._settings.KAFKA_DELIVERY_TIMEOUT_S)
            if left:
                log.warning("kafka.unflushed_messages", count=left)
