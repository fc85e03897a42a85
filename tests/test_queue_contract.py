"""One contract for every JobQueue backend (embedded, Kafka on a real Tansu broker), plus the
Kafka-only behaviour: failures are fast and readable, unacked ids are redelivered, a group splits
the work, and a consumer busy for longer than max.poll.interval.ms stays in the group."""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib

import pytest

from mediaflow import queue as jobqueue
from mediaflow import store as db
from mediaflow.jobs.model import Job, JobStatus, Method
from mediaflow.queue.kafka import KafkaQueue
from mediaflow.settings import Settings
from mediaflow.store import Expect
from tests.servers.kafka import start_tansu
from tests.servers.process import free_port

kafka_only = pytest.mark.backend
# For Kafka-only tests that use the `open_queue` fixture: only its Kafka variant.
on_kafka = pytest.mark.parametrize("overrides", ["kafka"], indirect=True)


@pytest.fixture(params=["embedded", pytest.param("kafka", marks=pytest.mark.backend)])
def overrides(request: pytest.FixtureRequest) -> dict:
    if request.param == "kafka":
        return request.getfixturevalue("kafka_settings")
    return {"QUEUE_BACKEND": "embedded", "POLL_INTERVAL_S": 0.1}


@pytest.fixture
async def store(tmp_path):
    store = await db.open_store(Settings(_env_file=None, SQLITE_PATH=tmp_path / "jobs.db"))
    yield store
    await store.close()


@pytest.fixture
async def open_queue(overrides, store):
    """Opens consumer queues on the test's backend; closes them all afterwards."""
    opened: list = []

    async def factory(**settings_overrides) -> jobqueue.JobQueue:
        settings = Settings(_env_file=None, **{**overrides, **settings_overrides})
        queue = await jobqueue.open_queue(settings, store, consumer=True)
        opened.append(queue)
        return queue

    yield factory
    for queue in opened:
        await queue.close()


async def submit(store, queue, job_id: str | None = None) -> str:
    """What the API does: store the job, then publish its id."""
    job = Job(
        method_name=Method.COMPRESS,
        source="media/in.mp4",
        output_format="mp4",
        **({"job_id": job_id} if job_id else {}),
    )
    await store.create(job)
    await queue.publish(job.job_id)
    return job.job_id


async def claim_and_ack(store, delivery) -> None:
    """What a worker does: claim the job durably, then ack."""
    claimed = await store.update(
        delivery.job_id, {"status": JobStatus.PROCESSING, "worker_id": "w"}, Expect.of(JobStatus.QUEUED)
    )
    assert claimed is not None, f"{delivery.job_id} was delivered but is not queued any more"
    await delivery.ack()


async def drain(store, *queues, expected: int, deadline_s: float = 20.0) -> list[list[str]]:
    """Receive with every queue concurrently (like one worker each) until `expected` ids arrived
    in total; returns the ids each queue received."""
    received: list[list[str]] = [[] for _ in queues]
    deadline = time.monotonic() + deadline_s

    async def work(index: int, queue) -> None:
        while sum(map(len, received)) < expected and time.monotonic() < deadline:
            delivery = await queue.receive(timeout=0.5)
            if delivery is not None:
                received[index].append(delivery.job_id)
                await claim_and_ack(store, delivery)

    await asyncio.gather(*(work(index, queue) for index, queue in enumerate(queues)))
    return received


# --- the contract ------------------------------------------------------------------------------


async def test_publish_then_receive_returns_the_id(open_queue, store):
    queue = await open_queue()
    job_id = await submit(store, queue)
    delivery = await queue.receive(timeout=10)
    assert delivery is not None and delivery.job_id == job_id
    assert isinstance(delivery, jobqueue.Delivery)
    await claim_and_ack(store, delivery)


async def test_receive_on_empty_queue_returns_none_after_timeout(open_queue):
    queue = await open_queue()
    started = time.monotonic()
    assert await queue.receive(timeout=1.0) is None
    assert 0.9 <= time.monotonic() - started < 3.0


async def test_several_ids_are_each_received_exactly_once(open_queue, store):
    queue = await open_queue()
    published = {await submit(store, queue) for _ in range(6)}
    (received,) = await drain(store, queue, expected=len(published))
    assert sorted(received) == sorted(published)
    assert await queue.receive(timeout=1.5) is None  # nothing delivered twice


async def test_acked_id_is_not_delivered_to_the_next_consumer(open_queue, store):
    first = await open_queue()
    job_id = await submit(store, first)
    delivery = await first.receive(timeout=10)
    assert delivery is not None and delivery.job_id == job_id
    await claim_and_ack(store, delivery)
    await first.close()
    second = await open_queue()
    assert await second.receive(timeout=3.0) is None


async def test_ping(open_queue):
    queue = await open_queue()
    await queue.ping()


# --- Kafka only --------------------------------------------------------------------------------


@kafka_only
async def test_open_fails_fast_when_broker_unreachable(kafka_settings, store):
    bootstrap = f"127.0.0.1:{free_port()}"
    settings = Settings(_env_file=None, **{**kafka_settings, "KAFKA_BOOTSTRAP_SERVERS": bootstrap})
    started = time.monotonic()
    with pytest.raises(jobqueue.QueueUnavailableError, match="KAFKA_BOOTSTRAP_SERVERS") as caught:
        await jobqueue.open_queue(settings, store, consumer=False)
    assert time.monotonic() - started < 8
    assert bootstrap in str(caught.value)


@kafka_only
async def test_publish_fails_fast_when_broker_goes_away(kafka_settings, store, tmp_path):
    broker = start_tansu(tmp_path, name="doomed-tansu")
    settings = Settings(
        _env_file=None,
        **{**kafka_settings, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "KAFKA_DELIVERY_TIMEOUT_S": 2.0},
    )
    queue = await jobqueue.open_queue(settings, store, consumer=False)
    try:
        await submit(store, queue)  # works while the broker is up
        broker.process.stop()
        started = time.monotonic()
        with pytest.raises(jobqueue.QueueError, match="did not confirm"):
            await queue.publish(str(uuid.uuid4()))
        assert time.monotonic() - started < 4
        with pytest.raises(jobqueue.QueueUnavailableError, match="KAFKA_BOOTSTRAP_SERVERS"):
            await queue.ping()
    finally:
        broker.process.stop()
        await queue.close()


@kafka_only
@on_kafka
async def test_unacked_id_is_redelivered_after_the_consumer_closes(open_queue, store):
    first = await open_queue()
    job_id = await submit(store, first)
    delivery = await first.receive(timeout=10)
    assert delivery is not None and delivery.job_id == job_id
    second = await open_queue()  # joins while the first holds the delivery
    await asyncio.sleep(1.5)
    await first.close()  # crashed or shut down before the claim: no commit
    started = time.monotonic()
    redelivered = await second.receive(timeout=10)
    assert redelivered is not None and redelivered.job_id == job_id
    assert time.monotonic() - started < 5


def balanced_ids(count: int) -> list[str]:
    """Job ids half of which hash to each of 2 partitions (librdkafka's default partitioner is
    CRC32 of the key), so that both consumers of the split test certainly get work."""
    ids: dict[int, list[str]] = {0: [], 1: []}
    while min(len(v) for v in ids.values()) < count // 2:
        job_id = str(uuid.uuid4())
        ids[zlib.crc32(job_id.encode()) % 2].append(job_id)
    return ids[0][: count // 2] + ids[1][: count // 2]


@kafka_only
@on_kafka
async def test_two_consumers_split_the_ids_without_duplicates(open_queue, store):
    first, second = await open_queue(), await open_queue()
    await asyncio.sleep(2.5)  # both joined (a join takes ~session.timeout/2 on Tansu)
    published = [await submit(store, first, job_id) for job_id in balanced_ids(10)]
    got_first, got_second = await drain(store, first, second, expected=10, deadline_s=10)
    assert sorted(got_first + got_second) == sorted(published)
    assert not set(got_first) & set(got_second)
    assert got_first and got_second, "one consumer did all the work: the group did not split the partitions"


async def member_id(queue: KafkaQueue) -> str | None:
    return await queue._run(queue._consumer.memberid)


@kafka_only
async def test_consumer_holding_a_delivery_past_max_poll_interval_stays_in_the_group(kafka_settings, store):
    """A worker may hold a delivery, or encode after its ack, for far longer than
    max.poll.interval.ms without calling receive(). With the limit at 6 s and 8 s of holding, the
    consumer must still be the same group member and its ack must succeed. (Without the
    background poll librdkafka leaves the group at 6 s and the commit fails with UNKNOWN_MEMBER_ID.)"""
    settings = Settings(_env_file=None, **kafka_settings)
    queue = await KafkaQueue.open(settings, consumer=True, extra_consumer_config={"max.poll.interval.ms": 6000})
    try:
        published = {await submit(store, queue), await submit(store, queue)}
        delivery = await queue.receive(timeout=10)
        assert delivery is not None and delivery.job_id in published
        member = await member_id(queue)
        assert member

        await asyncio.sleep(8)

        assert await member_id(queue) == member
        await claim_and_ack(store, delivery)  # its commit must land (checked below by a fresh consumer)
        started = time.monotonic()
        other = await queue.receive(timeout=5)
        assert other is not None and {other.job_id, delivery.job_id} == published
        assert time.monotonic() - started < 1.5  # no rejoin needed
        await claim_and_ack(store, other)
    finally:
        await queue.close()
    # The commits landed: a fresh consumer of the group gets nothing.
    fresh = await KafkaQueue.open(settings, consumer=True)
    try:
        assert await fresh.receive(timeout=3) is None
    finally:
        await fresh.close()


@kafka_only
async def test_a_busy_consumer_keeps_fetching_and_hands_ids_out_once_in_order(kafka_settings, store):
    """While a worker is busy (no receive()), its consumer keeps polling: it stays in the group, and the
    ids published meanwhile are in hand at once for its next receive(), each once, in order — with no
    fetch cycle to wait for after the job (the old pause/resume cost ~0.7 s per job on Tansu)."""
    settings = Settings(_env_file=None, **kafka_settings | {"KAFKA_TOPIC_PARTITIONS": 1})
    queue = await KafkaQueue.open(settings, consumer=True)
    try:
        first = await submit(store, queue)
        delivery = await queue.receive(timeout=10)
        assert delivery is not None and delivery.job_id == first
        await claim_and_ack(store, delivery)  # the worker pattern: ack right after the claim, then encode
        later = [await submit(store, queue) for _ in range(3)]
        await asyncio.sleep(1.0)  # "encoding"
        received = []
        for _ in later:
            started = time.monotonic()
            delivery = await queue.receive(timeout=5)
            assert time.monotonic() - started < 0.05, "the id was not fetched while the worker was busy"
            received.append(delivery.job_id)
            await claim_and_ack(store, delivery)
        assert received == later
        assert await queue.receive(timeout=1.0) is None
    finally:
        await queue.close()


async def test_headers_travel_with_the_id(open_queue, store, overrides):
    """Kafka carries headers (the trace context) with the id; the embedded queue has none to carry."""
    queue = await open_queue()
    job = Job(method_name=Method.COMPRESS, source="media/in.mp4", output_format="mp4")
    await store.create(job)
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await queue.publish(job.job_id, {"traceparent": traceparent})
    delivery = await queue.receive(timeout=10)
    assert delivery is not None and delivery.job_id == job.job_id
    expected = {"traceparent": traceparent} if overrides.get("QUEUE_BACKEND") == "kafka" else {}
    assert dict(delivery.headers) == expected
    await claim_and_ack(store, delivery)
