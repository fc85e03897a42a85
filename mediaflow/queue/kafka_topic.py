"""The Kafka topic and consumer group, seen from the admin API: create the topic when absent, and report
how many partitions it has against how many workers the group holds.

A consumer group gives each partition to exactly one member, so a topic with P partitions feeds at most
P workers through Kafka; any further worker gets nothing from the broker and lives on the store sweep
(worker/loop.py). An existing topic is never altered or recreated here (that is an operator's decision,
and some brokers cannot add partitions): a topic with fewer partitions than KAFKA_TOPIC_PARTITIONS is
reported instead — a warning at start-up, a line in /readyz, gauges in /metrics.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from mediaflow.logs import get_logger
from mediaflow.queue.base import QueueReport, QueueUnavailableError
from mediaflow.settings_groups import KafkaSettings

log = get_logger(__name__)

CONNECT_TIMEOUT_S = 5.0  # a reachable broker answers metadata in milliseconds


def unreachable(kafka: KafkaSettings, detail: object) -> QueueUnavailableError:
    return QueueUnavailableError(
        f"cannot reach Kafka at {kafka.bootstrap_servers} ({detail}); check KAFKA_BOOTSTRAP_SERVERS"
    )


def raise_partitions_hint(kafka: KafkaSettings) -> str:
    return (
        f"kafka-topics.sh --bootstrap-server {kafka.bootstrap_servers} --alter --topic "
        f"{kafka.topic} --partitions {kafka.topic_partitions}"
    )


def _admin(kafka: KafkaSettings) -> AdminClient:
    # log_level 0: failures are reported by the readable errors here; librdkafka's own
    # connection-refused lines would otherwise keep printing until the process exits.
    return AdminClient({"bootstrap.servers": kafka.bootstrap_servers, "log_level": 0})


def ensure_topic(kafka: KafkaSettings) -> int:
    """Create KAFKA_TOPIC with KAFKA_TOPIC_PARTITIONS if absent; returns its partition count. Runs in a
    thread. The AdminClient stays referenced until its futures resolved: a temporary one is destroyed
    first and its futures fail with _DESTROY."""
    admin = _admin(kafka)
    try:
        metadata = admin.list_topics(timeout=CONNECT_TIMEOUT_S)
    except KafkaException as exc:
        raise unreachable(kafka, exc.args[0].str()) from exc
    if (existing := metadata.topics.get(kafka.topic)) is not None:
        partitions = len(existing.partitions)
        if partitions < kafka.topic_partitions:
            log.warning(
                "kafka.topic_has_few_partitions",
                topic=kafka.topic,
                partitions=partitions,
                wanted=kafka.topic_partitions,
                consequence=f"at most {partitions} workers receive jobs from Kafka; the others take "
                f"jobs from the store after QUEUED_SWEEP_AFTER_S",
                fix=raise_partitions_hint(kafka),
            )
        return partitions
    # No replication factor given: the broker's default (KIP-464), right for one broker or many.
    topic = NewTopic(kafka.topic, num_partitions=kafka.topic_partitions)
    future = admin.create_topics([topic], operation_timeout=CONNECT_TIMEOUT_S)[kafka.topic]
    try:
        future.result(timeout=2 * CONNECT_TIMEOUT_S)
        log.info("kafka.topic_created", topic=kafka.topic, partitions=kafka.topic_partitions)
        return kafka.topic_partitions
    except KafkaException as exc:
        if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:  # another process won the race
            return ensure_topic(kafka)
        detail = exc.args[0].str()
    except TimeoutError:
        detail = "no answer"
    raise QueueUnavailableError(f"cannot create Kafka topic {kafka.topic!r}: {detail}")


def describe(kafka: KafkaSettings) -> QueueReport:
    """Partitions of the topic and members of the consumer group (runs in a thread). Brokers that do not
    list a group's members (Tansu) leave `group_members` None."""
    admin = _admin(kafka)
    try:
        topic = admin.list_topics(kafka.topic, timeout=CONNECT_TIMEOUT_S).topics.get(kafka.topic)
        partitions = len(topic.partitions) if topic is not None and topic.error is None else None
        group = admin.describe_consumer_groups([kafka.consumer_group])[kafka.consumer_group]
        members = len(group.result(timeout=CONNECT_TIMEOUT_S).members) or None
    except (KafkaException, TimeoutError) as exc:
        return QueueReport(details={"kafka": f"could not describe topic and group: {exc}"})
    report = QueueReport(partitions=partitions, group_members=members)
    report.details["kafka_partitions"] = partitions_line(kafka, report)
    return report


def partitions_line(kafka: KafkaSettings, report: QueueReport) -> str:
    """One line for /readyz: the partitions, the members, and what to do when they do not match."""
    partitions, members = report.partitions, report.group_members
    line = (
        f"topic {kafka.topic!r}: {partitions} partitions; consumer group "
        f"{kafka.consumer_group!r}: {members if members is not None else 'unknown (not listed by the broker)'} members"
    )
    idle = report.members_without_partition
    if idle:
        line += (
            f"; {idle} workers hold no partition and only take jobs that waited QUEUED_SWEEP_AFTER_S in "
            f"the store; raise the partitions: {raise_partitions_hint(kafka)}"
        )
    elif partitions is not None and partitions < kafka.topic_partitions:
        line += (
            f"; fewer than KAFKA_TOPIC_PARTITIONS={kafka.topic_partitions}: at most {partitions} workers "
            f"receive jobs from Kafka; raise them: {raise_partitions_hint(kafka)}"
        )
    return line
