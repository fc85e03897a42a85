"""The job event bus: an event for every applied transition, none for a refused one, in order."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mediaflow.jobs import lifecycle
from mediaflow.jobs.events import EventType, FailureReason, JobEvent, JobEvents, crossed_milestone
from mediaflow.jobs.model import Job, Method, utcnow
from mediaflow.store.sqlite import SqliteJobStore
from tests import media
from tests.apptools import make_settings, running_app, wait_for_final


class Recorder:
    def __init__(self, events: JobEvents) -> None:
        self.seen: list[JobEvent] = []
        events.subscribe(self.seen.append)

    def types(self, job_id: str | None = None) -> list[str]:
        return [e.type.value for e in self.seen if job_id is None or e.job.job_id == job_id]


@pytest.fixture
async def store(tmp_path):
    store = await SqliteJobStore.open(tmp_path / "jobs.db")
    yield store
    await store.close()


async def new_job(store, **fields) -> Job:
    job = Job(method_name=Method.COMPRESS, source="media/a.mp4", output_format="mp4", **fields)
    await store.create(job)
    return job


async def test_every_applied_transition_is_announced_and_refused_ones_are_not(store):
    events = JobEvents()
    recorder = Recorder(events)
    job = await new_job(store)

    claimed = await lifecycle.claim(store, job.job_id, "w1", 30, 3, events=events)
    assert claimed
    assert await lifecycle.claim(store, job.job_id, "w2", 30, 3, events=events) is None  # lost race: silent
    assert await lifecycle.renew(store, job.job_id, "w1", 30, progress=40)  # progress writes are not events
    # A zombie (not the lease holder) cannot fail the job, and nothing is announced.
    assert await lifecycle.fail(store, claimed, "w2", "boom", events=events) is None
    done = await lifecycle.complete(store, claimed, "w1", "out", "log", events=events)
    assert done is not None
    assert await lifecycle.cancel(store, done, events=events) is None  # already final
    assert recorder.types() == ["job.started", "job.completed"]
    assert recorder.seen[-1].job.version == done.version and recorder.seen[-1].job.progress == 100

    other = await new_job(store)
    await lifecycle.cancel(store, other, events=events)
    await lifecycle.retry(store, other.job_id, events=events)
    await lifecycle.fail_queued(store, other, "broker down", events=events)
    assert recorder.types(other.job_id) == ["job.canceled", "job.retried", "job.failed"]
    assert recorder.seen[-1].reason is FailureReason.NOT_QUEUED


async def test_abandoned_jobs_are_requeued_then_given_up_with_a_reason(store):
    events = JobEvents()
    recorder = Recorder(events)
    job = await new_job(store)
    later = utcnow() + timedelta(minutes=5)  # every lease has expired by then

    await lifecycle.claim(store, job.job_id, "w1", 1, 2, events=events)
    assert [j.job_id for j in await lifecycle.requeue_expired(store, 2, now=later, events=events)] == [job.job_id]
    await lifecycle.claim(store, job.job_id, "w2", 1, 2, events=events)
    assert await lifecycle.requeue_expired(store, 2, now=later, events=events) == []  # out of attempts: failed

    assert recorder.types() == ["job.started", "job.requeued", "job.started", "job.failed"]
    assert recorder.seen[-1].reason is FailureReason.GAVE_UP
    assert "gave up after 2 attempts" in recorder.seen[-1].job.error


def test_a_listener_that_raises_does_not_stop_the_others():
    events = JobEvents()
    seen = []
    events.subscribe(lambda event: 1 / 0)
    events.subscribe(seen.append)
    job = Job(method_name=Method.COMPRESS, source="s", output_format="mp4")
    events.emit(JobEvent(EventType.COMPLETED, job))
    assert len(seen) == 1


@pytest.mark.parametrize(
    "before,after,expected", [(0, 24, None), (0, 25, 25), (20, 60, 50), (75, 99, None), (74, 100, 75)]
)
def test_milestones(before, after, expected):
    assert crossed_milestone(before, after) == expected


async def test_a_real_run_announces_start_milestones_and_completion_in_order(tmp_path):
    settings = make_settings(tmp_path, PROGRESS_WRITE_INTERVAL_S=0.2)
    media.make_clip(tmp_path / "media", "clip.mp4", width=640, height=360, seconds=8)
    media.text_as_mp4(tmp_path / "media", "bad.mp4")
    async with running_app(settings, api_workers=1) as client:
        recorder = Recorder(client.app.state.events)
        good = (await client.post("/process", json={"source": "clip.mp4", "method_name": "resize"})).json()["job_id"]
        assert (await wait_for_final(client, good, timeout=120))["status"] == "completed"
        bad = (await client.post("/process", json={"source": "bad.mp4", "method_name": "compress"})).json()["job_id"]
        assert (await wait_for_final(client, bad, timeout=60))["status"] == "failed"

    types = recorder.types(good)
    assert types[0] == "job.started" and types[-1] == "job.completed"
    milestones = [e.job.progress for e in recorder.seen if e.job.job_id == good and e.type is EventType.PROGRESS]
    assert milestones and milestones == sorted(milestones), f"milestones announced in order: {milestones}"
    assert recorder.types(bad) == ["job.started", "job.failed"]
    assert recorder.seen[-1].reason is FailureReason.INVALID_INPUT
