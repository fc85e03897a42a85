"""Worker presence end to end: the beat of every process hosting workers (the API's own, `python worker.py`),
GET /workers and the Prometheus gauges, a killed process dropping out, a clean shutdown leaving at once,
jobs listings untouched, and a beat that survives its store going away."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from datetime import timedelta

import pytest

from mediaflow import store as db
from mediaflow.jobs.model import utcnow
from mediaflow.worker.presence import PresenceBeat, beat_interval_s
from tests import media
from tests.apptools import make_settings, running_app, start_worker, wait_for_final
from tests.helpers.stores import BACKENDS, backend_overrides

KEY = {"X-API-Key": "alice-key-1"}


async def wait_for_workers(client, count: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = (await client.get("/workers", headers=KEY)).json()
        if body["count"] == count:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"not {count} workers alive after {timeout} s: {body}")


def gauge(text: str, name: str) -> float | None:
    values = [float(line.split()[1]) for line in text.splitlines() if line.split(" ")[0] == name]
    return values[0] if values else None


async def test_workers_of_every_process_are_listed_until_they_die_or_leave(tmp_path) -> None:
    settings = make_settings(tmp_path, API_KEYS="alice:alice-key-1", LEASE_SECONDS=3, METRICS_JOB_COUNTS_TTL_S=0)
    media.make_clip(tmp_path / "media", "in.mp4", width=320, height=180, seconds=1)
    async with running_app(settings, api_workers=2) as client:
        assert (await client.get("/workers")).status_code == 401  # a key like every other read
        embedded = await wait_for_workers(client, 1)
        [me] = embedded["workers"]
        assert (me["host"], me["pid"], me["slots"], embedded["slots"]) == (socket.gethostname(), os.getpid(), 2, 2)

        standalone = start_worker(settings, tmp_path, "--concurrency", "3")
        try:
            both = await wait_for_workers(client, 2)
            assert (both["slots"], sorted(w["slots"] for w in both["workers"])) == (5, [2, 3])
            assert {w["pid"] for w in both["workers"]} == {os.getpid(), standalone.pid}
            scraped = (await client.get("/metrics")).text
            assert (gauge(scraped, "mediaflow_workers_alive"), gauge(scraped, "mediaflow_worker_slots_alive")) == (2, 5)

            # Jobs listings show jobs only, presence records beside them notwithstanding.
            job_id = (
                await client.post("/process", json={"source": "in.mp4", "method_name": "compress"}, headers=KEY)
            ).json()["job_id"]
            client.headers.update(KEY)
            assert (await wait_for_final(client, job_id))["status"] == "completed"
            for listing in ("/process", "/jobs"):
                assert [job["job_id"] for job in (await client.get(listing)).json()["jobs"]] == [job_id], listing

            # A killed process never leaves: it drops out once its record expires (LEASE_SECONDS).
            standalone.send_signal(signal.SIGKILL)
            standalone.wait(timeout=10)
            killed_at = time.monotonic()
            alone = await wait_for_workers(client, 1, timeout=10)
            assert alone["workers"][0]["pid"] == os.getpid()
            assert time.monotonic() - killed_at <= settings.LEASE_SECONDS + 1
        finally:
            if standalone.poll() is None:
                standalone.kill()
                standalone.wait()
    # The API's clean shutdown left at once: no record lingers until it expires.
    store = await db.open_store(settings)
    try:
        assert await store.workers.live(utcnow()) == []
    finally:
        await store.close()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_jobs_listings_and_counts_see_jobs_only_beside_a_live_worker(backend, request, tmp_path) -> None:
    settings = make_settings(
        tmp_path,
        API_KEYS="alice:alice-key-1",
        METRICS_JOB_COUNTS_TTL_S=0,
        QUEUE_BACKEND="embedded",
        STORAGE_BACKEND="local",
        **backend_overrides(request, backend, tmp_path),
    )
    media.make_clip(tmp_path / "media", "in.mp4", width=160, height=90, seconds=1)
    async with running_app(settings, api_workers=1) as client:
        assert (await wait_for_workers(client, 1))["slots"] == 1
        client.headers.update(KEY)
        job_id = (await client.post("/process", json={"source": "in.mp4", "method_name": "compress"})).json()["job_id"]
        assert (await wait_for_final(client, job_id))["status"] == "completed"
        for listing in ("/process", "/jobs", "/jobs?status=completed"):
            body = (await client.get(listing)).json()
            assert ([job["job_id"] for job in body["jobs"]], body["count"]) == ([job_id], 1), listing
        scraped = (await client.get("/metrics")).text
        counts = [float(line.split()[1]) for line in scraped.splitlines() if line.startswith("mediaflow_jobs{")]
        assert sum(counts) == 1 and gauge(scraped, "mediaflow_workers_alive") == 1


async def test_parallel_auto_spreads_a_job_only_once_a_second_worker_slot_is_alive(tmp_path) -> None:
    """The consumer of presence: "parallel": "auto" reads the live slots (live_worker_slots) when it plans."""
    settings = make_settings(
        tmp_path,
        API_KEYS="alice:alice-key-1",
        LEASE_SECONDS=3,
        CHUNK_SECONDS=0.8,
        CHUNK_MIN_SOURCE_S=1,
        WORK_DIR=tmp_path / "work",
    )
    (tmp_path / "work").mkdir()
    media.detailed_clip(tmp_path / "media", "clip.mp4", width=160, height=90, seconds=3, gop_seconds=0.5)
    auto = {"source": "clip.mp4", "outputs": [{"name": "main", "type": "video", "video": {"preset": "ultrafast"}}]}
    async with running_app(settings, api_workers=1) as client:
        client.headers.update(KEY)
        assert (await wait_for_workers(client, 1))["slots"] == 1
        alone = (await client.post("/jobs", json=auto)).json()["job_id"]
        assert (await wait_for_final(client, alone, view="/jobs/{}"))["tasks"] == []  # one slot: run whole

        second = start_worker(settings, tmp_path)
        try:
            assert (await wait_for_workers(client, 2))["slots"] == 2
            spread = (await client.post("/jobs", json=auto)).json()["job_id"]
            job = await wait_for_final(client, spread, view="/jobs/{}")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
    assert job["status"] == "completed", job
    assert sorted(t["kind"] for t in job["tasks"]) == ["audio", "chunk", "chunk", "chunk"], job["tasks"]


class Slot:
    def __init__(self, busy: bool) -> None:
        self.busy = busy


async def test_beat_survives_a_store_outage_and_says_how_long_it_is_valid(tmp_path) -> None:
    settings = make_settings(tmp_path, LEASE_SECONDS=1.5)
    store = await db.open_store(settings)
    beat = PresenceBeat(store.workers, [Slot(True), Slot(False), Slot(True)], settings.LEASE_SECONDS)
    beat.start()
    try:
        deadline = time.monotonic() + 5
        while not (live := await store.workers.live(utcnow())) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        [presence] = live
        assert (presence.process_id, presence.slots, presence.busy) == (beat.process_id, 3, 2)
        # Valid for three beats, which is one lease: a process alive here is one whose leases hold.
        assert presence.expires_at - presence.seen_at == timedelta(seconds=settings.LEASE_SECONDS)
        assert beat_interval_s(settings.LEASE_SECONDS) * 3 == settings.LEASE_SECONDS

        await store.close()  # the store goes away: every beat now fails
        await asyncio.sleep(3 * beat.interval_s())
        assert beat.running and not beat._task.done(), "a failing beat must not end the beat loop"
    finally:
        started = time.monotonic()
        await beat.stop()  # leaving fails too: logged, and the shutdown is not held up
        assert time.monotonic() - started < 6


async def test_the_busy_count_follows_a_job_within_a_second_or_two_not_a_beat(tmp_path) -> None:
    """A slot taking up or finishing a job wakes the beat (at most one extra beat a second), so
    GET /workers does not say "1/1 busy" for up to a beat (10 s with the default lease) after a job."""
    settings = make_settings(tmp_path, API_KEYS="alice:alice-key-1", LEASE_SECONDS=30)  # a beat every 10 s
    assert beat_interval_s(settings.LEASE_SECONDS) == 10
    media.make_clip(tmp_path / "media", "in.mp4", width=320, height=180, seconds=4)
    async with running_app(settings, api_workers=1) as client:
        client.headers.update(KEY)
        await wait_for_workers(client, 1)

        async def busy_within(expected: int, timeout: float) -> float:
            started = time.monotonic()
            while time.monotonic() - started < timeout:
                if (await client.get("/workers")).json()["busy"] == expected:
                    return time.monotonic() - started
                await asyncio.sleep(0.05)
            raise AssertionError(f"busy was not {expected} within {timeout} s")

        await asyncio.sleep(1.2)  # past the start-up beat's gap
        job_id = (await client.post("/process", json={"source": "in.mp4", "method_name": "resize"})).json()["job_id"]
        assert await busy_within(1, timeout=3) < 3
        assert (await wait_for_final(client, job_id))["status"] == "completed"
        assert await busy_within(0, timeout=3) < 3
