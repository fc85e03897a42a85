"""The harsher chaos run (`scripts/chaos.py --backend kafka-mongodb-s3`): Kafka (Tansu, memory) +
MongoDB (SecantusDB, data on disk) + S3 (SeaweedFS), the API as a real `uvicorn main:app` process and
three `python worker.py` processes. While clients submit jobs (each with its own Idempotency-Key,
retried until answered), it in turn:

- kills the API with SIGKILL in the middle of submissions, and starts it again;
- kills the MongoDB server with SIGKILL and restarts it on the same data and port;
- kills the S3 server with SIGKILL and restarts it on the same data and ports;
- restarts the broker empty (memory storage: the topic and the group's offsets are gone), so the jobs
  whose ids were on it must be found again through the store (the worker's queued-job sweep);
- kills a worker now and then.

It then checks that every accepted job (one per Idempotency-Key) completed exactly once, with one
output in the bucket that decodes, and that no ffmpeg is left running.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path

import av
import httpx

from tests import media
from tests.apptools import ApiServer, ffmpeg_processes, make_settings, start_worker, worker_events
from tests.servers.kafka import start_tansu
from tests.servers.mongo import start_secantus
from tests.servers.process import port_accepts
from tests.servers.s3 import _healthy, s3_overrides, start_seaweedfs

WORKERS = 3
SUBMIT_INTERVAL_S = 0.6


class Clients:
    """Submitting clients: each job has its Idempotency-Key and is retried (same key) until the API
    answers it — through API restarts (a new port each time) and store outages."""

    def __init__(self) -> None:
        self.url = ""
        self.accepted: dict[str, str] = {}  # idempotency key -> job id
        self.retries = 0

    async def submit(self, key: str) -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                try:
                    response = await client.post(
                        f"{self.url}/process",
                        json={"source": "clip.mp4", "method_name": "compress"},
                        headers={"Idempotency-Key": key},
                    )
                    if response.status_code == 200:
                        self.accepted[key] = response.json()["job_id"]
                        return
                    if response.status_code < 500:
                        raise RuntimeError(f"{key}: {response.status_code} {response.text[:200]}")
                except httpx.TransportError:
                    pass
                self.retries += 1
                await asyncio.sleep(0.5)


async def run(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="mediaflow-chaos-harsh-"))
    kafka = start_tansu(workdir)
    mongo = start_secantus(workdir / "mongo", on_disk=True)
    s3 = start_seaweedfs(workdir / "s3")
    servers = [kafka.process, mongo.process, s3.process]
    kills: Counter[str] = Counter()
    workers: list = []
    retired: list = []
    api: ApiServer | None = None
    try:
        (workdir / "work").mkdir()
        settings = make_settings(
            workdir,
            DB_BACKEND="mongodb",
            MONGO_URL=mongo.url,
            DB_NAME="chaos",
            QUEUE_BACKEND="kafka",
            KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap,
            KAFKA_TOPIC="chaos",
            KAFKA_CONSUMER_GROUP="chaos",
            KAFKA_SESSION_TIMEOUT_MS=2000,
            KAFKA_HEARTBEAT_INTERVAL_MS=300,
            QUEUED_SWEEP_AFTER_S=5,
            LEASE_SECONDS=args.lease,
            MAX_ATTEMPTS=10,
            WORK_DIR=workdir / "work",
            FFMPEG_THREADS=1,
            **s3_overrides(s3, "chaos"),
        )
        (workdir / "clips").mkdir()
        clip = media.make_clip(workdir / "clips", "clip.mp4", width=320, height=240, seconds=args.clip_seconds)
        shutil.copyfile(clip, workdir / "media" / "clip.mp4")

        clients = Clients()
        api = ApiServer(settings, workdir, probe_timeout=10, start_timeout=180)
        clients.url = api.url
        workers = [start_worker(settings, workdir) for _ in range(WORKERS)]

        async def restart_api() -> None:
            nonlocal api
            os.kill(api.process.pid, signal.SIGKILL)
            api.process.wait()
            kills["api"] += 1
            await asyncio.sleep(1)
            # A loaded machine (three workers encoding) can take more than a second to answer /readyz.
            api = await asyncio.to_thread(ApiServer, settings, workdir, probe_timeout=10, start_timeout=180)
            clients.url = api.url

        async def restart(server, name: str, ready, down_s: float = 2.0) -> None:
            os.killpg(server.process.pid, signal.SIGKILL)  # the server's own group (start_new_session)
            server.process.wait()
            kills[name] += 1
            await asyncio.sleep(down_s)
            await asyncio.to_thread(server.start, ready)

        def kill_a_worker() -> None:
            index = kills["worker"] % len(workers)
            workers[index].send_signal(signal.SIGKILL)
            workers[index].wait()
            retired.append(workers[index])
            workers[index] = start_worker(settings, workdir)
            kills["worker"] += 1

        async def faults() -> None:
            ping_mongo = lambda: port_accepts(int(mongo.url.rsplit(":", 1)[1].strip("/")))  # noqa: E731
            schedule = [
                (3, restart_api),
                (9, lambda: restart(mongo.process, "mongodb", ping_mongo)),
                (15, kill_a_worker),
                (18, lambda: restart(s3.process, "s3", lambda: _healthy(s3.port))),
                (24, lambda: restart(kafka.process, "kafka_emptied", lambda: port_accepts(kafka.port), down_s=0.5)),
                (28, restart_api),
                (31, kill_a_worker),
            ]
            started = time.monotonic()
            for at, fault in schedule:
                await asyncio.sleep(max(0, started + at - time.monotonic()))
                result = fault()
                if asyncio.iscoroutine(result):
                    await result

        async def submissions() -> None:
            tasks = []
            for i in range(args.jobs):
                tasks.append(asyncio.create_task(clients.submit(f"chaos-{i}")))
                await asyncio.sleep(SUBMIT_INTERVAL_S)
            await asyncio.gather(*tasks)

        started = time.monotonic()
        await asyncio.gather(faults(), submissions())
        # Wait for every accepted job to end; restart workers that died on their own (a bug to report).
        crashed, crash_reasons = 0, []
        finals: dict[str, dict] = {}
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() - started < args.timeout:
                for index, worker in enumerate(workers):
                    if worker.poll() is not None:
                        crashed += 1
                        crash_reasons.append(last_words(worker))
                        retired.append(worker)
                        workers[index] = start_worker(settings, workdir)
                try:
                    for job_id in clients.accepted.values():
                        if finals.get(job_id, {}).get("status") not in ("completed", "failed", "canceled"):
                            finals[job_id] = (await client.get(f"{clients.url}/status/{job_id}")).json()
                except (httpx.TransportError, ValueError):
                    pass
                if len(finals) == len(clients.accepted) and all(
                    job["status"] in ("completed", "failed", "canceled") for job in finals.values()
                ):
                    break
                await asyncio.sleep(0.5)
        elapsed = time.monotonic() - started
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
        leftover_ffmpeg = ffmpeg_processes(str(workdir / "work"))
        return {
            "backend": "kafka-mongodb-s3",
            "jobs_submitted": args.jobs,
            "jobs_accepted": len(clients.accepted),
            "client_retries": clients.retries,
            "kills": dict(kills),
            "worker_crashes_not_caused_by_kills": crashed,
            "worker_crash_reasons": crash_reasons,
            "seconds": round(elapsed, 1),
            **outcome(settings, clients, finals, retired + workers),
            "ffmpeg_left_running": len(leftover_ffmpeg),
        }
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        if api is not None:
            api.stop()
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def last_words(worker) -> str:
    """What a worker that exited on its own said last (its exit code and final log lines)."""
    worker.log_file.flush()
    lines = [line for line in Path(worker.log_file.name).read_text().splitlines() if line.strip()]
    return f"exit {worker.returncode}: " + " | ".join(line[:300] for line in lines[-4:])


def outcome(settings, clients: Clients, finals: dict[str, dict], workers: list) -> dict:
    """Completed, duplicates and decodable outputs, from the store (one job per key), the workers'
    logs (one completion per job) and the bucket (one output per job)."""
    import boto3
    from pymongo import MongoClient

    with MongoClient(settings.MONGO_URL) as mongo:
        per_key = Counter(
            doc["idempotency_key"]
            for doc in mongo[settings.DB_NAME][settings.MONGO_JOBS_COLLECTION].find(
                {"idempotency_key": {"$regex": "^chaos-"}}, {"idempotency_key": 1}
            )
        )
    events = [e for w in workers for e in worker_events(w)]
    completions = Counter(e["job_id"] for e in events if e.get("event") == "job.completed")
    s3 = boto3.client(
        "s3",
        endpoint_url=settings.S3_ENDPOINT_URL,
        region_name=settings.AWS_REGION,
        aws_access_key_id=settings.AWS_ACCESS_KEY,
        aws_secret_access_key=settings.aws_secret,
    )
    outputs_per_job, undecodable = {}, 0
    with tempfile.TemporaryDirectory() as scratch:
        for job_id in clients.accepted.values():
            listed = s3.list_objects_v2(Bucket=settings.OUTPUT_BUCKET, Prefix=f"{settings.OUTPUT_PREFIX}/{job_id}/")
            keys = [o["Key"] for o in listed.get("Contents", []) if not o["Key"].endswith("ffmpeg.log")]
            outputs_per_job[job_id] = len(keys)
            for key in keys:
                path = Path(scratch) / "out.mp4"
                s3.download_file(settings.OUTPUT_BUCKET, key, str(path))
                try:
                    with av.open(str(path)) as container:
                        frames = sum(1 for _ in container.decode(video=0))
                    undecodable += frames == 0
                except av.error.FFmpegError:
                    undecodable += 1
    statuses = Counter(job.get("status") for job in finals.values())
    return {
        "completed": statuses.get("completed", 0),
        "not_completed": {status: n for status, n in statuses.items() if status != "completed"},
        "jobs_per_idempotency_key_above_one": sum(n > 1 for n in per_key.values()),
        "completed_twice": sum(n > 1 for n in completions.values()),
        "jobs_without_output": sum(n == 0 for n in outputs_per_job.values()),
        "jobs_with_two_outputs": sum(n > 1 for n in outputs_per_job.values()),
        "undecodable_outputs": undecodable,
        "rerun_after_a_fault": sum(job.get("attempts", 1) > 1 for job in finals.values()),
        # Claimed from the store rather than from a Kafka message (the emptied broker lost their ids).
        "jobs_taken_by_store_sweep": sum(e.get("event") == "job.swept" for e in events),
    }
