"""Issue 17: every started worker gets work. The seed README's "three terminals": three `python worker.py`
on Kafka + MongoDB + S3 configured with the seed's variable names only, 12 jobs.

With a topic MediaFlow creates (KAFKA_TOPIC_PARTITIONS, 32 by default) every worker holds partitions;
with an existing 2-partition topic one worker holds none, is told so, and still works through the store
sweep — and no job runs twice."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import httpx
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from mediaflow.settings import Settings
from tests import media
from tests.helpers.s3 import put_source
from tests.seed_stack import seed_environment, start_api, start_worker, wait_all_final, wait_until
from tests.servers.s3 import ACCESS_KEY, SECRET_KEY

pytestmark = pytest.mark.backend

JOBS = 12


@pytest.fixture
def seed_env(kafka_server, s3_server, mongo_server) -> dict[str, str]:
    name = f"scale{uuid.uuid4().hex[:10]}"
    return seed_environment(
        DB_BACKEND="mongodb",
        MONGO_URL=mongo_server.url,
        DB_NAME=name,
        KAFKA_BOOTSTRAP_SERVERS=kafka_server.bootstrap,
        KAFKA_TOPIC=name,
        KAFKA_CONSUMER_GROUP=name,
        OUTPUT_BUCKET=name,
        OUTPUT_PREFIX="processed",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        S3_ENDPOINT_URL=s3_server.endpoint,
    )


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions)])[topic].result(timeout=10)


async def run_three_workers(seed_env: dict, tmp_path) -> tuple[list[str], list[Counter], dict, list, str]:
    """API + three workers, 12 compress jobs of an s3:// clip; returns the job ids, the jobs each
    worker claimed, the final statuses, the worker processes (stopped) and the API's /readyz details."""
    clip = media.make_clip(tmp_path, "input.mp4", width=320, height=240, seconds=2)
    settings = Settings(_env_file=None, **{k: v for k, v in seed_env.items() if k in Settings.model_fields})
    source = await put_source(settings, f"videos-{uuid.uuid4().hex[:8]}", "videos/input.mp4", clip)
    api, url = start_api(seed_env, tmp_path)
    workers = [start_worker(seed_env, tmp_path) for _ in range(3)]
    try:
        # Every worker has joined the group and received its first assignment (possibly empty).
        joined = ("kafka.partitions_assigned", "kafka.no_partition_assigned")
        wait_until(
            lambda: all(any(e["event"] in joined for e in w.events()) for w in workers), 60, "three workers to join"
        )
        time.sleep(1)
        job_ids = [
            httpx.post(f"{url}/process", json={"source": source, "method_name": "compress"}).json()["job_id"]
            for _ in range(JOBS)
        ]
        statuses = wait_all_final(url, job_ids, timeout=180)
        details = httpx.get(f"{url}/readyz").json()["details"]
        metrics = httpx.get(f"{url}/metrics").text
    finally:
        for worker in workers:
            worker.stop()
        api.stop()
    claimed = [Counter(e["job_id"] for e in w.events() if e["event"] == "job.claimed") for w in workers]
    return job_ids, claimed, statuses, workers, details | {"metrics": metrics}


async def test_three_workers_all_get_work_on_a_topic_mediaflow_creates(seed_env, tmp_path):
    # Ids hash to partitions at random: 12 of them leave one worker's partitions with 0-1 jobs about one
    # run in twenty. An idle worker then takes jobs waiting behind a busy one from the store (the sweep),
    # which is what "every worker gets work" means; a quick sweep makes that happen within the run. The
    # sweep runs when a receive times out (POLL_INTERVAL_S, 1 s by default): with jobs of a few tenths of
    # a second, the busy workers drained their partitions before an idle one looked (seen: 6, 1, 5).
    seed_env = seed_env | {"QUEUED_SWEEP_AFTER_S": "0.3", "POLL_INTERVAL_S": "0.2"}
    job_ids, claimed, statuses, _workers, details = await run_three_workers(seed_env, tmp_path)
    assert {status["status"] for status in statuses.values()} == {"completed"}, statuses
    assert sorted(sum(claimed, Counter())) == sorted(job_ids) and max(sum(claimed, Counter()).values()) == 1
    assert all(sum(c.values()) >= 2 for c in claimed), f"jobs claimed per worker: {[sum(c.values()) for c in claimed]}"
    assert "32 partitions" in details["kafka_partitions"], details
    assert "mediaflow_kafka_topic_partitions 32.0" in details["metrics"]


async def test_an_existing_two_partition_topic_is_reported_and_left_alone(seed_env, tmp_path):
    create_topic(seed_env["KAFKA_BOOTSTRAP_SERVERS"], seed_env["KAFKA_TOPIC"], partitions=2)
    # A quicker store sweep than the 2 s default: on a fast machine two partition holders drain 12 short
    # jobs before any of them has waited 2 s, and the worker without a partition would have nothing to show.
    seed_env = seed_env | {"QUEUED_SWEEP_AFTER_S": "0.3"}
    job_ids, claimed, statuses, workers, details = await run_three_workers(seed_env, tmp_path)
    assert {status["status"] for status in statuses.values()} == {"completed"}, statuses
    assert all(status["attempts"] == 1 for status in statuses.values()), statuses
    every_claim = sum(claimed, Counter())
    assert sorted(every_claim) == sorted(job_ids) and max(every_claim.values()) == 1, claimed  # none ran twice
    # Told at start-up: by every worker (the topic check), and by the worker left without a partition.
    events = [[e["event"] for e in w.events()] for w in workers]
    assert all("kafka.topic_has_few_partitions" in names for names in events), events
    assert any("kafka.no_partition_assigned" in names for names in events), events
    warning = next(e for e in workers[0].events() if e["event"] == "kafka.topic_has_few_partitions")
    assert warning["partitions"] == 2 and "--alter" in warning["fix"], warning
    # ... and in /readyz and /metrics; the topic itself is unchanged.
    assert "2 partitions" in details["kafka_partitions"] and "kafka-topics.sh" in details["kafka_partitions"], details
    assert "mediaflow_kafka_topic_partitions 2.0" in details["metrics"]
    admin = AdminClient({"bootstrap.servers": seed_env["KAFKA_BOOTSTRAP_SERVERS"]})
    assert len(admin.list_topics(seed_env["KAFKA_TOPIC"], timeout=5).topics[seed_env["KAFKA_TOPIC"]].partitions) == 2
    # The worker without a partition still worked, from the store.
    assert all(sum(c.values()) >= 1 for c in claimed), f"jobs claimed per worker: {[sum(c.values()) for c in claimed]}"
