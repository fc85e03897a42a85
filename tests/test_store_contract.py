"""The JobStore contract: one suite, run against every backend on a real server.

SQLite needs nothing; MongoDB (SecantusDB) and DynamoDB (DynamoDB Local) servers are started once
per session by tests/servers/, and only when a test for that backend runs. Every test gets a fresh
database / table / file, so tests don't see each other's jobs.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime, timedelta

import pytest

from mediaflow import store as db
from mediaflow.jobs.model import WEBHOOK_OUTBOX_FIELDS, Job, JobStatus, Method, Phase, RecordKind
from mediaflow.settings import Settings
from mediaflow.store import Expect, JobExistsError, StoreUnavailableError
from tests.helpers import stores
from tests.helpers.stores import BACKENDS, T0, backend_overrides, create_older_dynamo_table, make_job
from tests.servers.process import free_port

store = stores.store  # the fixture: each test runs once per backend

S = JobStatus


def order_key(job: Job):
    return (job.created_at, job.job_id)


# --- create / get ------------------------------------------------------------------------------


async def test_create_get_round_trips_every_field(store):
    full = make_job(
        status=S.PROCESSING,
        method_name=Method.EXTRACT_AUDIO,
        source="s3://bucket/clips/ä ö.mov",
        output_format="mp3",
        progress=42,
        phase=Phase.ENCODING,
        created_at=T0,
        updated_at=T0 + timedelta(seconds=1, microseconds=1),
        started_at=T0 + timedelta(seconds=2),
        completed_at=T0 + timedelta(days=1),
        error="ffmpeg exited with 183: moov atom not found",
        output_path="processed/x.mp3",
        log_path="processed/x.log",
        worker_id="host-1:123",
        lease_expires_at=T0 + timedelta(seconds=30),
        attempts=2,
        version=7,
        owner="alice",
        idempotency_key="req-1",
        eta_seconds=12.5,
        speed=0.1,
        callback_url="https://example.com/hooks/jobs",
        callback_progress=True,
        webhook_attempts=3,
        webhook_last_result="HTTP 503",
        webhook_event="job.completed",
        webhook_event_id="0b6c1f9e-event",
        webhook_due_at=T0 + timedelta(days=1, seconds=30),
        template="web",
        outputs_spec='[{"type": "thumbnails", "name": "poster", "count": 1}]',
        outputs='[{"name": "poster", "type": "thumbnails", "status": "queued", "progress": 0}]',
        source_media='{"format": "mov", "duration": 2.5}',
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        parent_id="a-parent-job",
        task='{"kind": "chunk", "index": 3}',
        awaiting_tasks=True,
        destination="s3://their-bucket/videos/",
        downloaded_bytes=5_200_000,
        source_size_bytes=10_500_000,
    )
    assert full.record_kind is RecordKind.TASK  # a record with a parent is a task
    assert all(value is not None for value in full.model_dump().values())  # a new field joins here
    minimal = make_job()  # every optional field None
    for job in (full, minimal):
        await store.create(job)
        stored = await store.get_record(job.job_id)  # a job or a task
        assert stored == job
        assert isinstance(stored.status, JobStatus) and isinstance(stored.phase, Phase)
        assert stored.created_at.utcoffset() == timedelta(0)
    assert (await store.get(minimal.job_id)).started_at is None
    assert (await store.get(minimal.job_id)).eta_seconds is None


async def test_duplicate_job_id_is_refused(store):
    job = make_job(source="first")
    await store.create(job)
    with pytest.raises(JobExistsError):
        await store.create(job.model_copy(update={"source": "second"}))
    assert (await store.get(job.job_id)).source == "first"


async def test_get_unknown_job_is_none(store):
    assert await store.get("no-such-job") is None


# --- list ----------------------------------------------------------------------------------------


async def test_list_orders_by_created_at_then_job_id_and_pages(store):
    # Groups of three share a created_at, so the job_id tie-break decides within a group.
    jobs = [make_job(created_at=T0 + timedelta(seconds=i // 3)) for i in range(25)]
    for job in random.sample(jobs, len(jobs)):
        await store.create(job)
    newest = [job.job_id for job in sorted(jobs, key=order_key, reverse=True)]

    pages = [await store.list(limit=10, skip=skip) for skip in (0, 10, 20)]
    assert [len(page) for page in pages] == [10, 10, 5]
    assert [job.job_id for page in pages for job in page] == newest
    assert pages[0][0] == max(jobs, key=order_key)  # whole records, not just ids

    oldest = [job.job_id for job in await store.list(limit=100, oldest_first=True)]
    assert oldest == newest[::-1]
    assert [job.job_id for job in await store.list(limit=7, skip=3, oldest_first=True)] == newest[::-1][3:10]
    assert await store.list(limit=10, skip=25) == []


async def test_list_filters_by_status_and_owner(store):
    statuses = [S.QUEUED, S.PROCESSING, S.COMPLETED, S.FAILED]
    owners = ["alice", "bob", None]
    jobs = [
        make_job(created_at=T0 + timedelta(seconds=i), status=statuses[i % 4], owner=owners[i % 3]) for i in range(24)
    ]
    for job in jobs:
        await store.create(job)

    def expected(status=None, owner=None):
        return [
            job.job_id
            for job in sorted(jobs, key=order_key, reverse=True)
            if (status is None or job.status == status) and (owner is None or job.owner == owner)
        ]

    async def listed(**filters):
        return [job.job_id for job in await store.list(limit=100, **filters)]

    assert await listed(status=S.PROCESSING) == expected(status=S.PROCESSING)
    assert len(await listed(status=S.PROCESSING)) == 6
    assert await listed(owner="bob") == expected(owner="bob")
    assert await listed(owner="bob", status=S.COMPLETED) == expected(status=S.COMPLETED, owner="bob")
    assert await listed(status=S.CANCELED) == []
    assert await listed(owner="nobody") == []
    for filters in (
        {},
        {"status": S.PROCESSING},
        {"owner": "bob"},
        {"owner": "bob", "status": S.COMPLETED},
        {"status": S.CANCELED},
        {"owner": "nobody"},
    ):
        assert await store.count(**filters) == len(expected(**filters)), filters
    # Filtered and paged: the page is cut after filtering.
    page = await store.list(limit=3, skip=2, owner="alice", oldest_first=True)
    assert [job.job_id for job in page] == expected(owner="alice")[::-1][2:5]


async def test_count_active_counts_an_owners_queued_and_processing_jobs(store):
    statuses = [S.QUEUED, S.PROCESSING, S.COMPLETED, S.FAILED, S.CANCELED]
    jobs = [
        make_job(created_at=T0 + timedelta(seconds=i), status=statuses[i % 5], owner=["alice", "bob", None][i % 3])
        for i in range(30)
    ]
    for job in jobs:
        await store.create(job)

    def expected(owner):
        return sum(1 for job in jobs if job.owner == owner and job.status in (S.QUEUED, S.PROCESSING))

    for owner in ("alice", "bob", None, "nobody"):
        assert await store.count_active(owner) == expected(owner), owner
    assert expected("alice") == 4 and expected(None) == 4
    # Every status change moves a job in or out of the count, whichever way it goes.
    alice_queued = next(job for job in jobs if job.owner == "alice" and job.status is S.QUEUED)
    assert await store.update(alice_queued.job_id, {"status": S.PROCESSING, "worker_id": "w"})
    assert await store.count_active("alice") == 4
    assert await store.update(alice_queued.job_id, {"status": S.COMPLETED, "worker_id": None})
    assert await store.count_active("alice") == 3
    alice_failed = next(job for job in jobs if job.owner == "alice" and job.status is S.FAILED)
    assert await store.update(alice_failed.job_id, {"status": S.QUEUED})
    assert await store.count_active("alice") == 4
    assert await store.update(alice_failed.job_id, {"progress": 5})  # no status change: no move
    assert await store.count_active("alice") == 4
    assert await store.delete(alice_failed.job_id)
    assert await store.count_active("alice") == 3
    assert await store.count_active("bob") == expected("bob")


async def test_task_records_are_left_out_of_listings_and_found_by_their_job(store):
    parents = [make_job(created_at=T0 + timedelta(seconds=i), owner="alice", status=S.PROCESSING) for i in range(2)]
    first, second = parents
    statuses = [S.QUEUED, S.PROCESSING, S.COMPLETED, S.QUEUED]
    tasks = [
        make_job(
            parent_id=first.job_id,
            task=f'{{"kind": "chunk", "index": {i}}}',
            owner="alice",
            status=statuses[i],
            created_at=T0 + timedelta(seconds=10 - i),
        )
        for i in range(4)
    ]
    tasks.append(make_job(parent_id=second.job_id, task='{"kind": "join"}', status=S.QUEUED, created_at=T0))
    for job in (*parents, *tasks):
        await store.create(job)

    jobs_only = sorted((job.job_id for job in parents), reverse=True)
    for filters in ({}, {"owner": "alice"}, {"status": S.PROCESSING}, {"owner": "alice", "status": S.PROCESSING}):
        assert [job.job_id for job in await store.list(limit=100, **filters)] == [
            job.job_id for job in sorted(parents, key=order_key, reverse=True)
        ], filters
        assert await store.count(**filters) == 2, filters
    assert await store.list(limit=100, status=S.QUEUED) == [] and await store.count(status=S.QUEUED) == 0
    assert len(jobs_only) == 2
    assert await store.count_active("alice") == 2  # tasks do not count against their owner

    listed = await store.list_tasks(first.job_id)
    assert [job.job_id for job in listed] == [job.job_id for job in sorted(tasks[:4], key=order_key)]
    assert listed[-1] == tasks[0]  # whole records: parent_id and task round-trip
    assert listed[-1].is_task and not first.is_task
    assert [job.job_id for job in await store.list_tasks(second.job_id)] == [tasks[4].job_id]
    assert await store.list_tasks("no-such-job") == []

    # a task is claimed, leased and reaped like a job
    queued = tasks[3]
    lease = T0 - timedelta(minutes=1)
    claimed = await store.update(
        queued.job_id, {"status": S.PROCESSING, "worker_id": "w1", "lease_expires_at": lease}, Expect.of(S.QUEUED)
    )
    assert claimed is not None and claimed.parent_id == first.job_id
    assert await store.update(queued.job_id, {"worker_id": "w2"}, Expect.of(S.QUEUED)) is None
    assert await store.count_active("alice") == 2 and await store.count(status=S.PROCESSING) == 2
    assert queued.job_id in [job.job_id for job in await store.list_expired_leases(T0)]
    assert await store.delete(tasks[2].job_id, Expect.of(S.COMPLETED))
    assert len(await store.list_tasks(first.job_id)) == 3


# --- update --------------------------------------------------------------------------------------


async def test_update_applies_changes_bumps_version_and_updated_at(store):
    job = make_job(created_at=T0, updated_at=T0)
    await store.create(job)
    updated = await store.update(job.job_id, {"progress": 50, "phase": Phase.ENCODING, "speed": 1.5})
    assert updated is not None
    assert (updated.progress, updated.phase, updated.speed, updated.version) == (50, Phase.ENCODING, 1.5, 1)
    assert updated.updated_at > T0
    assert updated.created_at == T0 and updated.source == job.source
    assert await store.get(job.job_id) == updated

    again = await store.update(job.job_id, {"lease_expires_at": T0 + timedelta(hours=1), "status": S.PROCESSING})
    assert again.version == 2
    assert again.updated_at >= updated.updated_at
    assert again.lease_expires_at == T0 + timedelta(hours=1) and again.status is S.PROCESSING


EXPECTATIONS = {  # against a job in PROCESSING, held by w1, at version 3
    "status": (Expect.of(S.PROCESSING), True),
    "status-any-of": (Expect.of(S.QUEUED, S.PROCESSING), True),
    "status-other": (Expect.of(S.QUEUED, S.COMPLETED), False),
    "worker": (Expect(worker_id="w1"), True),
    "worker-other": (Expect(worker_id="w2"), False),
    "version": (Expect(version=3), True),
    "version-stale": (Expect(version=2), False),
    "all": (Expect.of(S.PROCESSING, worker_id="w1", version=3), True),
    "all-but-version": (Expect.of(S.PROCESSING, worker_id="w1", version=4), False),
    "all-but-worker": (Expect.of(S.PROCESSING, worker_id="w2", version=3), False),
    "all-but-status": (Expect.of(S.COMPLETED, worker_id="w1", version=3), False),
    "not-awaiting-tasks": (Expect(awaiting_tasks=False), True),
    "awaiting-tasks": (Expect(awaiting_tasks=True), False),
    "all-but-awaiting-tasks": (Expect.of(S.PROCESSING, worker_id="w1", version=3, awaiting_tasks=True), False),
}


@pytest.mark.parametrize(("expect", "applies"), list(EXPECTATIONS.values()), ids=list(EXPECTATIONS))
async def test_update_applies_only_when_expect_matches(store, expect, applies):
    job = make_job(status=S.PROCESSING, worker_id="w1", version=3)
    await store.create(job)
    before = await store.get(job.job_id)
    assert expect.matches(before) is applies  # the suite and db.Expect agree on what should happen

    result = await store.update(job.job_id, {"progress": 10, "worker_id": "w9"}, expect)
    after = await store.get(job.job_id)
    if applies:
        assert result is not None and result == after
        assert (after.progress, after.worker_id, after.version) == (10, "w9", 4)
    else:
        assert result is None
        assert after == before


async def test_expect_worker_id_does_not_match_an_unheld_job(store):
    job = make_job()
    await store.create(job)
    assert await store.update(job.job_id, {"progress": 1}, Expect(worker_id="w1")) is None
    assert (await store.get(job.job_id)).version == 0


async def test_update_of_unknown_job_is_none(store):
    assert await store.update("no-such-job", {"progress": 1}) is None
    assert await store.update("no-such-job", {"progress": 1}, Expect.of(S.QUEUED)) is None
    assert await store.get("no-such-job") is None


async def test_update_sets_fields_back_to_none(store):
    job = make_job(owner="alice")
    await store.create(job)
    held = {"worker_id": "w1", "lease_expires_at": T0, "error": "boom", "eta_seconds": 3.0}
    await store.update(job.job_id, held)
    cleared = await store.update(job.job_id, {**{name: None for name in held}, "owner": None})
    assert cleared.version == 2
    stored = await store.get(job.job_id)
    assert stored == cleared
    assert (stored.worker_id, stored.lease_expires_at, stored.error, stored.eta_seconds, stored.owner) == (None,) * 5
    assert await store.list(limit=10, owner="alice") == []
    assert [j.job_id for j in await store.list(limit=10)] == [job.job_id]


async def test_update_refuses_store_managed_fields(store):
    job = make_job()
    await store.create(job)
    for field in ("version", "job_id", "created_at", "no_such_field"):
        with pytest.raises(ValueError):
            await store.update(job.job_id, {field: None})


async def test_concurrent_claims_have_exactly_one_winner(store):
    job = make_job()
    await store.create(job)
    results = await asyncio.gather(
        *(
            store.update(job.job_id, {"status": S.PROCESSING, "worker_id": f"w{i}"}, Expect.of(S.QUEUED))
            for i in range(20)
        )
    )
    winners = [result for result in results if result is not None]
    assert len(winners) == 1
    stored = await store.get(job.job_id)
    assert stored.status is S.PROCESSING and stored.worker_id == winners[0].worker_id
    assert stored.version == 1


async def test_concurrent_version_checks_have_exactly_one_winner(store):
    job = make_job()
    await store.create(job)
    results = await asyncio.gather(
        *(store.update(job.job_id, {"progress": i + 1}, Expect(version=0)) for i in range(20))
    )
    winners = [result for result in results if result is not None]
    assert len(winners) == 1
    stored = await store.get(job.job_id)
    assert stored.progress == winners[0].progress and stored.version == 1


async def test_many_concurrent_updates_of_different_jobs_all_apply(store):
    """Workers and API requests in one process share one store: concurrent writes must not trip over
    each other (SQLite's single connection once failed 'cannot commit - SQL statements in progress')."""
    jobs = [make_job() for _ in range(40)]
    await asyncio.gather(*(store.create(job) for job in jobs))
    claims = await asyncio.gather(
        *(store.update(job.job_id, {"status": S.PROCESSING, "worker_id": "w"}, Expect.of(S.QUEUED)) for job in jobs),
        *(store.get(job.job_id) for job in jobs),
    )
    assert all(claim is not None for claim in claims)
    assert await store.count(status=S.PROCESSING) == 40


@pytest.fixture(params=BACKENDS)
async def two_stores(request: pytest.FixtureRequest, tmp_path):
    """Two separately opened stores on one database: two processes (the API and a worker, or two workers)."""
    settings = Settings(_env_file=None, **backend_overrides(request, request.param, tmp_path))
    first = await db.open_store(settings)
    second = await db.open_store(settings)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_two_processes_writing_at_once_never_fail(two_stores):
    """Writers (and readers) in different processes interleave: every conditional update either applies
    or says it did not, never raises. (SQLite once answered 'database is locked' at once, busy_timeout or not, when
    an update ran while a read of the same connection was still open and another process committed.)"""
    first, second = two_stores
    jobs = [make_job() for _ in range(30)]
    await asyncio.gather(*(store.create(job) for job, store in zip(jobs, [first, second] * 15, strict=False)))
    for round_ in range(3):
        expected = S.QUEUED if round_ == 0 else S.PROCESSING
        results = await asyncio.gather(
            *(
                store.update(
                    job.job_id,
                    {"status": S.PROCESSING, "progress": round_ * 10 + index, "worker_id": name},
                    Expect.of(expected) if round_ == 0 else Expect(version=round_),
                )
                for job in jobs
                for index, (name, store) in enumerate([("a", first), ("b", second)])
            ),
            *(store.get(job.job_id) for job in jobs for store in (first, second)),
            *(store.list(limit=10) for store in (first, second) for _ in range(5)),
        )
        results = results[: 2 * len(jobs)]  # the writes; the reads ran among them
        winners = [result for result in results if result is not None]
        assert len(winners) == len(jobs), f"round {round_}: one winner per job"
    assert [job.version for job in await first.list(limit=100)] == [3] * len(jobs)
    # A read of one process open while its own writes start and the other process commits.
    for job in jobs:
        for store, other in ((first, second), (second, first)):
            await asyncio.gather(
                store.get(job.job_id),
                store.update(job.job_id, {"progress": 50}),
                other.update(job.job_id, {"progress": 60}),
                store.list(limit=5),
            )


# --- delete ------------------------------------------------------------------------------------


async def test_delete_removes_a_job_only_when_expect_matches(store):
    job = make_job(status=S.COMPLETED)
    await store.create(job)
    assert not await store.delete(job.job_id, Expect.of(S.QUEUED, S.PROCESSING)), "not in those statuses"
    assert not await store.delete(job.job_id, Expect(version=5)), "changed since read"
    assert await store.get(job.job_id) is not None
    assert await store.delete(job.job_id, Expect.of(S.COMPLETED, version=0))
    assert await store.get(job.job_id) is None
    assert not await store.delete(job.job_id), "already gone"
    assert await store.count() == 0 and await store.list(limit=10) == []


async def test_delete_frees_the_idempotency_key(store):
    job = make_job(status=S.FAILED, owner="alice", idempotency_key="order-1")
    await store.create(job)
    assert await store.delete(job.job_id, Expect.of(S.FAILED))
    assert await store.find_by_idempotency_key("alice", "order-1") is None
    again = make_job(owner="alice", idempotency_key="order-1")
    await store.create(again)  # the key is free again: no guard or index entry left behind
    assert (await store.find_by_idempotency_key("alice", "order-1")).job_id == again.job_id


async def test_concurrent_deletes_have_exactly_one_winner(store):
    job = make_job(status=S.CANCELED, idempotency_key="k")
    await store.create(job)
    results = await asyncio.gather(*(store.delete(job.job_id, Expect.of(S.CANCELED)) for _ in range(10)))
    assert results.count(True) == 1


# --- idempotency keys ----------------------------------------------------------------------------


async def test_idempotency_keys_are_unique_per_owner(store):
    alice = make_job(owner="alice", idempotency_key="k1")
    bob = make_job(owner="bob", idempotency_key="k1")
    anonymous = make_job(idempotency_key="k1")
    for job in (alice, bob, anonymous):
        await store.create(job)
    with pytest.raises(JobExistsError):
        await store.create(make_job(owner="alice", idempotency_key="k1"))

    assert (await store.find_by_idempotency_key("alice", "k1")).job_id == alice.job_id
    assert (await store.find_by_idempotency_key("bob", "k1")).job_id == bob.job_id
    assert (await store.find_by_idempotency_key(None, "k1")).job_id == anonymous.job_id
    assert await store.find_by_idempotency_key("carol", "k1") is None
    assert await store.find_by_idempotency_key("alice", "k2") is None
    # Refused duplicates left nothing behind, and no bookkeeping shows up as a job.
    listed = await store.list(limit=100)
    assert sorted(job.job_id for job in listed) == sorted(j.job_id for j in (alice, bob, anonymous))
    assert await store.count() == 3
    # Jobs without a key don't collide with each other.
    await store.create(make_job(owner="alice"))
    await store.create(make_job(owner="alice"))
    assert len(await store.list(limit=100, owner="alice")) == 3


async def test_idempotency_keys_without_owner_are_unique_too(store):
    anonymous = make_job(idempotency_key="k1")
    await store.create(anonymous)
    with pytest.raises(JobExistsError):
        await store.create(make_job(idempotency_key="k1"))
    assert (await store.find_by_idempotency_key(None, "k1")).job_id == anonymous.job_id
    assert len(await store.list(limit=100)) == 1


async def test_concurrent_creates_with_one_idempotency_key_make_one_job(store):
    candidates = [make_job(owner="alice", idempotency_key="same-request") for _ in range(10)]
    results = await asyncio.gather(*(store.create(job) for job in candidates), return_exceptions=True)
    assert sum(result is None for result in results) == 1
    assert all(isinstance(result, JobExistsError) for result in results if result is not None)
    winner = candidates[results.index(None)]
    assert (await store.find_by_idempotency_key("alice", "same-request")).job_id == winner.job_id
    assert [job.job_id for job in await store.list(limit=100)] == [winner.job_id]


# --- leases, ping, availability ------------------------------------------------------------------


async def test_list_expired_leases(store):
    now = T0 + timedelta(hours=1)
    expired_late = make_job(status=S.PROCESSING, worker_id="a", lease_expires_at=now - timedelta(seconds=1))
    expired_early = make_job(status=S.PROCESSING, worker_id="b", lease_expires_at=now - timedelta(minutes=5))
    others = [
        make_job(status=S.PROCESSING, worker_id="c", lease_expires_at=now + timedelta(seconds=1)),
        make_job(status=S.PROCESSING, worker_id="d", lease_expires_at=now),  # "before now" is strict
        make_job(status=S.PROCESSING),  # no lease at all
        make_job(status=S.QUEUED, lease_expires_at=now - timedelta(minutes=5)),
        make_job(status=S.FAILED, worker_id="e", lease_expires_at=now - timedelta(minutes=5)),
    ]
    for job in (expired_late, *others, expired_early):
        await store.create(job)
    expired = await store.list_expired_leases(now)
    assert [job.job_id for job in expired] == [expired_early.job_id, expired_late.job_id]
    assert [job.job_id for job in await store.list_expired_leases(now, limit=1)] == [expired_early.job_id]


# --- the webhook outbox --------------------------------------------------------------------------


def pending_webhook(due_at: datetime, status: JobStatus = S.COMPLETED) -> Job:
    return make_job(
        status=status,
        webhook_event=f"job.{status.value}",
        webhook_event_id=f"event-{due_at.isoformat()}",
        webhook_due_at=due_at,
    )


async def test_list_webhooks_due(store):
    now = T0 + timedelta(hours=1)
    due_late = pending_webhook(now - timedelta(seconds=1), S.FAILED)
    due_early = pending_webhook(now - timedelta(minutes=5))
    due_now = pending_webhook(now, S.CANCELED)  # "at or before now"
    not_yet = pending_webhook(now + timedelta(microseconds=1))
    nothing_pending = make_job(status=S.COMPLETED)
    for job in (due_late, not_yet, nothing_pending, due_now, due_early):
        await store.create(job)

    async def due_ids(at: datetime = now, limit: int = 100) -> list[str]:
        return [job.job_id for job in await store.list_webhooks_due(at, limit=limit)]

    assert await due_ids() == [due_early.job_id, due_late.job_id, due_now.job_id]
    assert await due_ids(limit=2) == [due_early.job_id, due_late.job_id]
    assert await store.list_webhooks_due(now, limit=0) == []
    [first] = await store.list_webhooks_due(now, limit=1)
    assert first == due_early, "whole records"

    # Taken by a sweeper (due time moved past one attempt), and delivered (cleared): no longer due.
    assert await store.update(due_early.job_id, {"webhook_due_at": now + timedelta(minutes=1)}, Expect(version=0))
    cleared = await store.update(due_late.job_id, dict.fromkeys(WEBHOOK_OUTBOX_FIELDS), Expect(version=0))
    assert (cleared.webhook_event, cleared.webhook_event_id, cleared.webhook_due_at) == (None, None, None)
    assert await store.get(due_late.job_id) == cleared
    assert await due_ids() == [due_now.job_id]
    later = now + timedelta(minutes=2)
    assert await due_ids(later) == [due_now.job_id, not_yet.job_id, due_early.job_id]
    # Pending again (a retried job that finished again) is listed again.
    await store.update(
        due_late.job_id,
        {"webhook_event": "job.completed", "webhook_event_id": "again", "webhook_due_at": now - timedelta(hours=1)},
    )
    assert (await due_ids())[0] == due_late.job_id


async def test_ping(store):
    await store.ping()


@pytest.mark.parametrize("backend", ["sqlite", "mongodb", "dynamodb"])
async def test_unreachable_store_fails_fast_and_says_what_to_check(backend, tmp_path):
    port = free_port()  # nobody listens here
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    overrides, hint = {
        "sqlite": ({"SQLITE_PATH": str(blocker / "jobs.db")}, str(blocker)),
        "mongodb": ({"MONGO_URL": f"mongodb://127.0.0.1:{port}/"}, "check MONGO_URL"),
        "dynamodb": (
            {
                "DYNAMODB_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                "AWS_ACCESS_KEY": "testkey",
                "AWS_SECRET_ACCESS_KEY": "testsecret",
            },
            "DYNAMODB_ENDPOINT_URL",
        ),
    }[backend]
    settings = Settings(_env_file=None, DB_BACKEND=backend, DB_NAME="unreachable", **overrides)
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as raised:
        await db.open_store(settings)
    assert time.monotonic() - started < 8
    assert hint in str(raised.value)
    if backend != "sqlite":
        assert f"127.0.0.1:{port}" in str(raised.value)


# --- upgrades: a store made by an older MediaFlow --------------------------------------------------


async def assert_upgraded_store_lists_webhooks_due(settings: Settings) -> None:
    """Open a store on a database made by an older MediaFlow: the outbox works there."""
    store = await db.open_store(settings)
    try:
        job = pending_webhook(T0)
        await store.create(job)
        assert [due.job_id for due in await store.list_webhooks_due(T0)] == [job.job_id]
    finally:
        await store.close()


async def test_sqlite_database_without_the_outbox_columns_is_upgraded(tmp_path):
    """An older jobs table (no webhook_event/_id/_due_at columns) gets them, and the index on them."""
    import sqlite3

    path = tmp_path / "old.db"
    old_fields = [name for name in Job.model_fields if name not in WEBHOOK_OUTBOX_FIELDS]
    with sqlite3.connect(path) as connection:
        connection.execute(f"CREATE TABLE jobs ({', '.join(old_fields)}, PRIMARY KEY (job_id))")
    await assert_upgraded_store_lists_webhooks_due(Settings(_env_file=None, DB_BACKEND="sqlite", SQLITE_PATH=str(path)))
    with sqlite3.connect(path) as connection:
        indexes = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "jobs_by_webhook_due" in indexes


@pytest.mark.backend
async def test_dynamodb_table_without_the_outbox_index_gets_it(request):
    """A table made before `by_webhook_due` existed: open() adds the index (UpdateTable) and waits
    until it can be queried."""
    settings = Settings(_env_file=None, **request.getfixturevalue("dynamo_settings"))
    await create_older_dynamo_table(settings)
    await assert_upgraded_store_lists_webhooks_due(settings)
    again = await db.open_store(settings)  # a second start finds it there: nothing to add
    await again.close()


@pytest.mark.backend
async def test_dynamodb_table_not_made_by_mediaflow_is_refused(request):
    """A table lacking the listing indexes is someone else's: refused, not altered (only indexes added
    since, like `by_webhook_due`, are added to an existing table)."""
    import aioboto3

    from mediaflow.aws import client_kwargs

    settings = Settings(_env_file=None, **request.getfixturevalue("dynamo_settings"))
    async with aioboto3.Session().client("dynamodb", **client_kwargs(settings, "dynamodb")) as client:
        await client.create_table(
            TableName=settings.DB_NAME,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
        )
        with pytest.raises(StoreUnavailableError, match=r"lacks the indexes \['by_created', 'by_owner', 'by_status'\]"):
            await db.open_store(settings)
        description = (await client.describe_table(TableName=settings.DB_NAME))["Table"]
    assert "GlobalSecondaryIndexes" not in description
