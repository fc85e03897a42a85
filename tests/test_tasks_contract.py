"""Tasks as their own kind of record, on every store (real SQLite, SecantusDB and DynamoDB Local): `get`
answers jobs only, one indexed query finds the queued tasks, and a job whose work is out in its tasks
is handed over, kept and taken back through the `awaiting_tasks` field its conditional updates check.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta

import pytest

from mediaflow import store as db
from mediaflow.jobs import lifecycle
from mediaflow.jobs.model import Job, JobStatus, RecordKind, utcnow
from mediaflow.settings import Settings
from mediaflow.store import Expect
from mediaflow.store.base import OLD_TASKS_HOLDER
from tests.helpers import stores
from tests.helpers.stores import T0, create_older_dynamo_table, make_job

store = stores.store  # the fixture: each test runs once per backend

S = JobStatus
LEASE_S = 30
JOB_TIMEOUT_S = 3600
HOUR = timedelta(hours=1)


def make_task(parent: Job, **fields) -> Job:
    return make_job(parent_id=parent.job_id, task='{"kind": "chunk"}', **fields)


async def test_a_record_is_a_job_or_a_task_and_get_answers_jobs_only(store):
    parent = make_job(status=S.PROCESSING)
    task = make_task(parent)
    assert (parent.record_kind, task.record_kind) == (RecordKind.JOB, RecordKind.TASK)
    with pytest.raises(ValueError, match="a task record needs a parent_id"):
        Job(source="in.mp4", record_kind=RecordKind.TASK)
    with pytest.raises(ValueError, match="a job record has no parent_id"):
        Job(source="in.mp4", record_kind=RecordKind.JOB, parent_id=parent.job_id)
    for record in (parent, task):
        await store.create(record)

    assert await store.get(parent.job_id) == parent
    assert await store.get(task.job_id) is None  # a task's id is no job's
    assert await store.get_record(task.job_id) == task
    assert await store.get_record(parent.job_id) == parent
    assert await store.get_record("no-such-record") is None
    # a task is changed and removed by its id like a job, and stays a task
    updated = await store.update(task.job_id, {"progress": 5}, Expect.of(S.QUEUED))
    assert updated is not None and updated.record_kind is RecordKind.TASK
    with pytest.raises(ValueError, match="not updatable"):
        await store.update(task.job_id, {"record_kind": RecordKind.JOB})
    assert await store.delete(task.job_id)
    assert await store.get_record(task.job_id) is None


async def test_list_queued_tasks_is_the_queued_tasks_oldest_first(store):
    parents = [make_job(status=S.PROCESSING, created_at=T0 + timedelta(seconds=i)) for i in range(3)]
    queued_job = make_job(created_at=T0 - timedelta(hours=1))  # a queued job is no task
    statuses = [S.QUEUED, S.PROCESSING, S.COMPLETED, S.FAILED, S.CANCELED, S.QUEUED]
    tasks = [
        make_task(parents[i % 3], status=status, created_at=T0 + timedelta(seconds=60 - i))
        for i, status in enumerate(statuses)
    ]
    twins = [make_task(parents[0], created_at=T0 + timedelta(seconds=30)) for _ in range(2)]  # same time
    for record in (*parents, queued_job, *tasks, *twins):
        await store.create(record)

    def ids(records: list[Job]) -> list[str]:
        return [record.job_id for record in records]

    queued = sorted([tasks[0], tasks[5], *twins], key=lambda t: (t.created_at, t.job_id))
    assert ids(await store.list_queued_tasks(limit=100)) == ids(queued)
    assert ids(await store.list_queued_tasks(limit=2)) == ids(queued[:2])
    assert await store.list_queued_tasks(limit=0) == []
    assert len(await store.list_queued_tasks()) == 4  # the default batch holds them all

    # A claim takes a task out; a re-queue (lease expired, released) puts it back in its place.
    oldest = queued[0]
    claimed = await lifecycle.claim(store, oldest.job_id, "w1", LEASE_S, 3)
    assert claimed is not None and claimed.record_kind is RecordKind.TASK
    assert ids(await store.list_queued_tasks(limit=100)) == ids(queued[1:])
    assert await lifecycle.release(store, oldest.job_id, "w1", reason="shutting down") is not None
    assert ids(await store.list_queued_tasks(limit=100)) == ids(queued)
    # ...and the end of a task (or a job's cancel of it) takes it out for good.
    assert await lifecycle.cancel(store, queued[1]) is not None
    assert ids(await store.list_queued_tasks(limit=100)) == ids([queued[0], *queued[2:]])
    # Jobs and tasks stay apart: the job listings show no task, and the queued job is still listed.
    assert ids(await store.list(limit=100, status=S.QUEUED)) == [queued_job.job_id]


async def handed_over(store, worker: str = "splitter") -> Job:
    """A job a worker claimed, split and handed to its tasks (one queued task)."""
    job = make_job()
    await store.create(job)
    assert await lifecycle.claim(store, job.job_id, worker, LEASE_S, 3) is not None
    await store.create(make_task(job))
    held = await lifecycle.hand_to_tasks(store, job.job_id, worker, JOB_TIMEOUT_S, progress=10)
    assert held is not None
    return held


async def test_hand_over_leaves_the_job_processing_awaiting_its_tasks_with_no_worker(store):
    held = await handed_over(store)
    assert (held.status, held.awaiting_tasks, held.worker_id, held.progress) == (S.PROCESSING, True, None, 10)
    assert held.lease_expires_at > utcnow() + timedelta(seconds=JOB_TIMEOUT_S - 60)
    # The splitting worker holds it no more: its own renewals fail (it stops), and so does a second hand-over.
    assert await lifecycle.renew(store, held.job_id, "splitter", LEASE_S) is None
    assert await lifecycle.hand_to_tasks(store, held.job_id, "splitter", JOB_TIMEOUT_S) is None
    # Each settled task renews the long lease with the tasks' progress.
    renewed = await lifecycle.renew_awaiting_tasks(store, held.job_id, JOB_TIMEOUT_S, progress=55)
    assert renewed is not None and (renewed.progress, renewed.awaiting_tasks) == (55, True)
    # The reaper leaves it alone while its long lease runs.
    assert held.job_id not in [job.job_id for job in await store.list_expired_leases(utcnow())]
    assert await lifecycle.requeue_expired(store, 3) == []


async def test_of_two_workers_settling_the_last_tasks_one_takes_the_job_back(store):
    held = await handed_over(store)
    taken = await asyncio.gather(*(lifecycle.take_from_tasks(store, held.job_id, f"w{i}", LEASE_S) for i in range(8)))
    winners = [job for job in taken if job is not None]
    assert len(winners) == 1
    [winner] = winners
    assert (winner.status, winner.awaiting_tasks, winner.worker_id) == (S.PROCESSING, False, winner.worker_id)
    assert winner.worker_id in {f"w{i}" for i in range(8)}
    # Taken back, it is an ordinary running job: the tasks' renewals and take-backs no longer apply.
    assert await lifecycle.renew_awaiting_tasks(store, held.job_id, JOB_TIMEOUT_S, progress=99) is None
    assert await lifecycle.take_from_tasks(store, held.job_id, "late", LEASE_S) is None
    assert await lifecycle.renew(store, held.job_id, winner.worker_id, LEASE_S) is not None
    finished = await lifecycle.complete(store, winner, winner.worker_id, "out/x.mp4", "out/x.log")
    assert finished is not None and (finished.status, finished.awaiting_tasks) == (S.COMPLETED, False)


async def test_a_job_awaiting_tasks_past_its_long_lease_is_requeued_and_no_longer_awaits(store):
    held = await handed_over(store)
    later = utcnow() + timedelta(seconds=JOB_TIMEOUT_S + 1)
    [requeued] = await lifecycle.requeue_expired(store, 3, now=later)
    assert (requeued.job_id, requeued.status, requeued.awaiting_tasks) == (held.job_id, S.QUEUED, False)
    assert requeued.error == "its tasks did not finish within its lease (JOB_TIMEOUT_S); re-queued"
    assert await lifecycle.take_from_tasks(store, held.job_id, "w1", LEASE_S) is None


async def test_a_task_the_reaper_gives_up_on_wakes_its_job(store):
    held = await handed_over(store)
    [task] = await store.list_tasks(held.job_id)
    claimed = await lifecycle.claim(store, task.job_id, "w1", LEASE_S, max_attempts=1)
    assert claimed is not None
    # Its worker died: past the lease, with no attempt left, the task fails and its job is queued now.
    requeued = await lifecycle.requeue_expired(store, 1, now=utcnow() + timedelta(seconds=LEASE_S + 1))
    assert [job.job_id for job in requeued] == [held.job_id]
    assert (await store.get_record(task.job_id)).status is S.FAILED
    job = await store.get(held.job_id)
    assert (job.status, job.awaiting_tasks, job.worker_id) == (S.QUEUED, False, None)
    assert job.error.startswith("a task failed")


async def test_cancel_ends_the_wait_for_tasks(store):
    held = await handed_over(store)
    canceled = await lifecycle.cancel(store, held)
    assert canceled is not None and (canceled.status, canceled.awaiting_tasks) == (S.CANCELED, False)
    assert await lifecycle.take_from_tasks(store, held.job_id, "w1", LEASE_S) is None


def older_records() -> tuple[Job, Job, Job]:
    """As an older MediaFlow left them: a job held by the old sentinel worker while its task is
    queued, and a job a worker runs."""
    held = make_job(status=S.PROCESSING, worker_id=OLD_TASKS_HOLDER, created_at=T0)
    return held, make_task(held, created_at=T0), make_job(status=S.PROCESSING, worker_id="w1", created_at=T0 + HOUR)


async def assert_upgraded(store, held: Job, task: Job, running: Job) -> None:
    awaiting = held.model_copy(update={"awaiting_tasks": True, "worker_id": None})
    assert await store.get(held.job_id) == awaiting  # no sentinel worker any more
    assert await store.get(running.job_id) == running
    assert await store.get(task.job_id) is None and await store.get_record(task.job_id) == task
    assert [job.job_id for job in await store.list(limit=10)] == [running.job_id, held.job_id]
    assert await store.count() == 2
    assert [t.job_id for t in await store.list_queued_tasks()] == [task.job_id]
    taken = await lifecycle.take_from_tasks(store, held.job_id, "w2", LEASE_S)
    assert taken is not None and (taken.worker_id, taken.awaiting_tasks) == ("w2", False)


async def test_sqlite_records_stored_before_record_kinds_are_upgraded(tmp_path):
    """A jobs table without record_kind and awaiting_tasks: its rows with a parent become tasks."""
    path = tmp_path / "old.db"
    old_fields = [name for name in Job.model_fields if name not in ("record_kind", "awaiting_tasks")]
    records = older_records()
    with sqlite3.connect(path) as connection:
        connection.execute(f"CREATE TABLE jobs ({', '.join(old_fields)}, PRIMARY KEY (job_id))")
        for record in records:
            document = record.to_document()
            connection.execute(
                f"INSERT INTO jobs ({', '.join(old_fields)}) VALUES ({', '.join('?' for _ in old_fields)})",
                [document[name] for name in old_fields],
            )
    store = await db.open_store(Settings(_env_file=None, DB_BACKEND="sqlite", SQLITE_PATH=str(path)))
    try:
        await assert_upgraded(store, *records)
    finally:
        await store.close()


@pytest.mark.backend
async def test_mongodb_documents_stored_before_record_kinds_are_upgraded(request):
    """Task documents without record_kind get it when the store opens; jobs without it read as jobs."""
    from pymongo import AsyncMongoClient

    settings = Settings(_env_file=None, **request.getfixturevalue("mongo_settings"))
    records = older_records()
    client: AsyncMongoClient = AsyncMongoClient(settings.MONGO_URL)
    try:
        collection = client[settings.DB_NAME][settings.MONGO_JOBS_COLLECTION]
        for record in records:
            document = record.to_document()
            del document["record_kind"], document["awaiting_tasks"]
            await collection.insert_one(document)
    finally:
        await client.close()
    store = await db.open_store(settings)
    try:
        await assert_upgraded(store, *records)
    finally:
        await store.close()


@pytest.mark.backend
async def test_dynamodb_items_stored_before_record_kinds_are_upgraded(request):
    """An older table (no by_queued index) with items of an older MediaFlow: start-up adds the index,
    files the queued tasks in it and turns the sentinel-held job into one awaiting its tasks; every
    item told its kind by list_pk already."""
    from mediaflow.store.dynamo_items import item_from_job

    settings = Settings(_env_file=None, **request.getfixturevalue("dynamo_settings"))
    records = older_records()
    items = [item_from_job(record) for record in records]
    for item in items:
        for newer in ("queued_in", "record_kind", "awaiting_tasks"):
            item.pop(newer, None)
    await create_older_dynamo_table(settings, items)
    store = await db.open_store(settings)
    try:
        await assert_upgraded(store, *records)
    finally:
        await store.close()
