"""A worker outlives its job store going away: found by scripts/chaos.py's harsher run, where a
MongoDB server killed and restarted made a `python worker.py` exit (AutoReconnect escaped its loop).

The server (SecantusDB with its data on disk) is killed with SIGKILL while the worker is idle and
polling, and restarted on the same data and port; the same worker must then run the next job.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from mediaflow.jobs.model import format_timestamp, utcnow
from tests import media
from tests.apptools import make_settings, running_app, start_worker, wait_for_final, worker_events
from tests.servers.mongo import start_secantus
from tests.servers.process import port_accepts


async def test_a_worker_survives_a_store_restart(tmp_path) -> None:
    mongo = start_secantus(tmp_path / "mongo", on_disk=True)
    worker = None
    try:
        settings = make_settings(
            tmp_path,
            DB_BACKEND="mongodb",
            MONGO_URL=mongo.url,
            DB_NAME="restart",
            QUEUE_BACKEND="embedded",
            STORAGE_BACKEND="local",
        )
        media.make_clip(tmp_path / "media", "clip.mp4", seconds=1)
        worker = start_worker(settings, tmp_path)
        async with running_app(settings) as client:
            first = (await client.post("/process", json={"source": "clip.mp4", "method_name": "extract_audio"})).json()
            assert (await wait_for_final(client, first["job_id"]))["status"] == "completed"

            os.killpg(mongo.process.pid, signal.SIGKILL)
            mongo.process.process.wait()
            time.sleep(3)  # the worker polls an absent store several times (POLL_INTERVAL_S=0.2)
            assert worker.poll() is None, worker_events(worker)[-3:]
            port = int(mongo.url.rsplit(":", 1)[1].strip("/"))
            mongo.process.start(ready=lambda: port_accepts(port))
            restarted_at = format_timestamp(utcnow())

            second = (await client.post("/process", json={"source": "clip.mp4", "method_name": "extract_audio"})).json()
            assert (await wait_for_final(client, second["job_id"]))["status"] == "completed"
            # Its presence beat met the outage too (only logged) and beats again: it counts as alive.
            deadline = time.monotonic() + 10
            while not [w for w in (await client.get("/workers")).json()["workers"] if w["seen_at"] > restarted_at]:
                assert time.monotonic() < deadline, "the worker's presence beat did not resume after the restart"
                await asyncio.sleep(0.2)
        assert worker.poll() is None, "the worker exited"
        events = [e["event"] for e in worker_events(worker)]
        assert "worker.cannot_take_jobs" in events  # it did meet the outage
        assert events.count("job.completed") == 2
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        mongo.process.stop()
