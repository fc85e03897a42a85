"""Worker presence on every job store backend (SQLite, MongoDB via SecantusDB, DynamoDB Local): the same
WorkerRegistry contract (beat, expiry, leave, prune), the sum of live slots, and that presence records
never show among jobs (listings, counts, lease and outbox sweeps)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from mediaflow.jobs.model import JobStatus
from mediaflow.store.workers import WorkerPresence, live_worker_slots
from tests.helpers import stores
from tests.helpers.stores import make_job

store = stores.store  # the fixture: each test runs once per backend

T0 = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)


def presence(
    process_id: str, *, slots: int = 1, busy: int = 0, started: float = 0, expires: float = 30
) -> WorkerPresence:
    """A process on host "h" that started `started` seconds after T0 and beat at T0, valid `expires` s."""
    return WorkerPresence(
        process_id=process_id,
        host="h",
        pid=100 + len(process_id),
        slots=slots,
        busy=busy,
        started_at=T0 + timedelta(seconds=started),
        seen_at=T0,
        expires_at=T0 + timedelta(seconds=expires),
    )


async def test_beat_live_leave(store) -> None:
    workers = store.workers
    assert await workers.live(T0) == []
    a, b = presence("a", slots=4, started=2, expires=30), presence("b", slots=2, started=1, expires=10)
    dead = presence("dead", slots=8, expires=-1)
    for record in (a, dead, b):
        await workers.beat(record)
    assert await workers.live(T0) == [b, a]  # oldest started first, every field as beaten
    assert await workers.live(T0 + timedelta(seconds=10)) == [a]  # b expires at exactly that instant
    assert await workers.live(T0 + timedelta(seconds=30)) == []

    again = replace(a, busy=3, seen_at=T0 + timedelta(seconds=5), expires_at=T0 + timedelta(seconds=35))
    await workers.beat(again)  # replaces a's record: still one a, with the new beat
    assert await workers.live(T0 + timedelta(seconds=30)) == [again]
    assert await workers.live(T0) == [b, again]

    assert await workers.leave("a") and not await workers.leave("a")
    assert await workers.live(T0) == [b]
    assert not await workers.leave("never-beat")


async def test_prune_removes_only_expired_records(store) -> None:
    workers = store.workers
    for record in (presence("gone-1", expires=-5), presence("gone-2", expires=0), presence("alive", expires=1)):
        await workers.beat(record)
    assert await workers.prune(T0) == 2  # expired at or before T0
    assert await workers.prune(T0) == 0
    # The pruned records are gone for good, not just hidden by the expiry filter.
    assert [p.process_id for p in await workers.live(T0 - timedelta(hours=1))] == ["alive"]


async def test_live_worker_slots_sums_the_live_processes(store) -> None:
    assert await live_worker_slots(store, T0) == 0
    await store.workers.beat(presence("two", slots=2))
    await store.workers.beat(presence("three", slots=3, busy=3))
    await store.workers.beat(presence("expired", slots=16, expires=-1))
    assert await live_worker_slots(store, T0) == 5
    await store.workers.leave("two")
    assert await live_worker_slots(store, T0) == 3


async def test_presence_records_never_show_among_jobs(store) -> None:
    queued = make_job(created_at=T0, owner="alice")
    stale = make_job(
        created_at=T0 + timedelta(seconds=1), status=JobStatus.PROCESSING, worker_id="w", lease_expires_at=T0
    )
    webhook = make_job(
        created_at=T0 + timedelta(seconds=2),
        status=JobStatus.COMPLETED,
        webhook_event="job.completed",
        webhook_due_at=T0,
    )
    for job in (queued, stale, webhook):
        await store.create(job)
    for i in range(5):
        await store.workers.beat(presence(f"w{i}", slots=2, busy=1, expires=3600))

    later = T0 + timedelta(minutes=1)
    assert [job.job_id for job in await store.list(limit=100)] == [webhook.job_id, stale.job_id, queued.job_id]
    assert [job.job_id for job in await store.list(limit=100, oldest_first=True, skip=1)] == [
        stale.job_id,
        webhook.job_id,
    ]
    assert await store.count() == 3
    assert [await store.count(status=status) for status in (JobStatus.QUEUED, JobStatus.PROCESSING)] == [1, 1]
    assert await store.count(owner="alice") == 1 and await store.count_active("alice") == 1
    assert await store.count_active(None) == 1  # the processing one; completed jobs are not active
    assert [job.job_id for job in await store.list_expired_leases(later)] == [stale.job_id]
    assert [job.job_id for job in await store.list_webhooks_due(later)] == [webhook.job_id]
    assert await store.get("w0") is None and await store.list_tasks("w0") == []
    assert len(await store.workers.live(T0)) == 5  # and they are all there
