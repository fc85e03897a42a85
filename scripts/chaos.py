"""Chaos run: N jobs, two worker processes, one SIGKILLed at random every few seconds and restarted.

Reports jobs completed, lost (not completed when the run ends) and processed twice (completed by
more than one run, or more than one final output). A webhook receiver (WEBHOOK_URL) that answers 503
to the first attempt of every third event checks that the final webhook of every job arrives despite
the kills (the outbox): events missing, accepted (200) more than once (allowed: at least once, same event id), and
signatures that do not verify. Runs on the embedded default by default; pass
--backend kafka-mongodb to run against Kafka (Tansu) + a MongoDB server (SecantusDB) it starts.

--backend kafka-mongodb-s3 runs the harsher faults (scripts/chaos_harsh.py): Kafka + MongoDB + S3
with three workers, the API killed mid-submission (clients retry with their Idempotency-Key), the
MongoDB and S3 servers killed and restarted on their data, and the broker restarted empty.

    .venv/bin/python scripts/chaos.py --jobs 50 --kill-every 4
    .venv/bin/python scripts/chaos.py --backend kafka-mongodb-s3 --jobs 36 --clip-seconds 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import media  # noqa: E402
from tests.apptools import make_settings, running_app, start_worker, worker_events  # noqa: E402
from tests.webhook_receiver import SECRET, Received, Receiver, Reply  # noqa: E402

FINAL_EVENT_WAIT_S = 30  # after the last job finished, for final events left by killed workers


def flaky_answer() -> Callable[[Received], Reply]:
    """503 to the first attempt of every third event: retries are pending when workers are killed."""
    seen: set[str] = set()

    def answer(request: Received) -> Reply:
        event_id = request.headers["MediaFlow-Event-Id"]
        first = event_id not in seen
        seen.add(event_id)
        return Reply(503) if first and int(event_id.replace("-", ""), 16) % 3 == 0 else Reply(200)

    return answer


def webhook_report(receiver: Receiver, job_ids: list[str]) -> dict:
    received = receiver.all()
    delivered = [r for r in received if r.event["type"] == "job.completed" and r.answered == 200]
    per_event = Counter(r.headers["MediaFlow-Event-Id"] for r in delivered)
    jobs_told = {r.event["data"]["job_id"] for r in delivered}
    return {
        "webhook_posts": len(received),
        "final_events_missing": len(set(job_ids) - jobs_told),
        "final_events_accepted_twice": sum(count > 1 for count in per_event.values()),
        "bad_signatures": sum(not r.signature_ok() for r in received),
    }


def final_events_arrived(receiver: Receiver, job_ids: list[str]) -> bool:
    return webhook_report(receiver, job_ids)["final_events_missing"] == 0


def start_backend(name: str, workdir: Path) -> tuple[dict, list]:
    """Settings overrides and the server processes for the chosen backend."""
    if name == "embedded":
        return {}, []
    from tests.servers.stack import start_kafka_and_mongo

    overrides, servers = start_kafka_and_mongo(workdir, "chaos")
    # Short consumer timeouts: a killed worker's partitions move to the survivor within seconds.
    overrides |= {"KAFKA_SESSION_TIMEOUT_MS": 2000, "KAFKA_HEARTBEAT_INTERVAL_MS": 300, "QUEUED_SWEEP_AFTER_S": 5}
    return overrides, servers


async def chaos(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="mediaflow-chaos-"))
    overrides, servers = start_backend(args.backend, workdir)
    receiver = Receiver(answer=flaky_answer()).__enter__()
    try:
        settings = make_settings(
            workdir,
            LEASE_SECONDS=args.lease,
            MAX_ATTEMPTS=10,
            WEBHOOK_URL=receiver.url(),
            WEBHOOK_SECRET=SECRET,
            WEBHOOK_BACKOFF_BASE_S=2,
            WEBHOOK_TIMEOUT_S=2,
            WEBHOOK_SWEEP_INTERVAL_S=1,
            **overrides,
        )
        (workdir / "clips").mkdir()
        clip = media.make_clip(workdir / "clips", "clip.mp4", width=640, height=360, seconds=args.clip_seconds)
        shutil.copyfile(clip, workdir / "media" / "clip.mp4")
        rng = random.Random(args.seed)
        async with running_app(settings, api_workers=0) as client:
            job_ids = []
            for _ in range(args.jobs):
                response = await client.post("/process", json={"source": "clip.mp4", "method_name": "compress"})
                response.raise_for_status()
                job_ids.append(response.json()["job_id"])
            workers = [start_worker(settings, workdir) for _ in range(2)]
            retired, kills = [], 0
            started = time.monotonic()
            next_kill = started + args.kill_every
            while time.monotonic() - started < args.timeout:
                statuses = [(await client.get(f"/status/{job_id}")).json()["status"] for job_id in job_ids]
                if all(status in ("completed", "failed", "canceled") for status in statuses):
                    break
                if time.monotonic() >= next_kill:
                    index = rng.randrange(len(workers))
                    workers[index].send_signal(signal.SIGKILL)
                    workers[index].wait()
                    retired.append(workers[index])
                    workers[index] = start_worker(settings, workdir)
                    kills += 1
                    next_kill = time.monotonic() + args.kill_every * rng.uniform(0.5, 1.5)
                await asyncio.sleep(0.25)
            elapsed = time.monotonic() - started
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=60)
            # Final events a killed worker left in the outbox: this API process's sweeper sends them.
            deadline = time.monotonic() + FINAL_EVENT_WAIT_S
            while not final_events_arrived(receiver, job_ids) and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            finals = [(await client.get(f"/status/{job_id}")).json() for job_id in job_ids]

        completions: Counter[str] = Counter()
        for worker in retired + workers:
            completions.update(e["job_id"] for e in worker_events(worker) if e["event"] == "job.completed")
        outputs = {
            job_id: [
                p
                for p in (Path(settings.LOCAL_STORAGE_DIR) / settings.OUTPUT_PREFIX / job_id).glob("*")
                if p.name != "ffmpeg.log" and not p.name.startswith(".partial")
            ]
            for job_id in job_ids
        }
        return {
            "backend": args.backend,
            "jobs": args.jobs,
            "worker_kills": kills,
            "seconds": round(elapsed, 1),
            "completed": sum(job["status"] == "completed" for job in finals),
            "lost": sum(job["status"] != "completed" for job in finals),
            "processed_twice": sum(count > 1 for count in completions.values())
            + sum(len(files) > 1 for files in outputs.values()),
            "rerun_after_kill": sum(job["attempts"] > 1 for job in finals),
            "max_attempts_seen": max(job["attempts"] for job in finals),
            **webhook_report(receiver, job_ids),
            # Delivered by another process than the one that finished the job (its worker was killed).
            "final_events_resumed_elsewhere": sum("resumed)" in (job["webhook_last_result"] or "") for job in finals),
        }
    finally:
        receiver.__exit__(None, None, None)
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["embedded", "kafka-mongodb", "kafka-mongodb-s3"], default="embedded")
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--kill-every", type=float, default=4.0, help="seconds between kills (randomised ±50%%)")
    parser.add_argument("--lease", type=float, default=3.0, help="LEASE_SECONDS for the run")
    parser.add_argument("--clip-seconds", type=float, default=4.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.backend == "kafka-mongodb-s3":
        from scripts import chaos_harsh

        report = asyncio.run(chaos_harsh.run(args))
        print(json.dumps(report, indent=2))
        bad = (
            "jobs_per_idempotency_key_above_one",
            "completed_twice",
            "jobs_without_output",
            "jobs_with_two_outputs",
            "undecodable_outputs",
            "ffmpeg_left_running",
            "worker_crashes_not_caused_by_kills",
        )
        healthy = report["completed"] == report["jobs_accepted"] == args.jobs and not any(report[k] for k in bad)
        return 0 if healthy else 1
    report = asyncio.run(chaos(args))
    print(json.dumps(report, indent=2))
    healthy = (
        report["lost"] == report["processed_twice"] == report["final_events_missing"] == report["bad_signatures"] == 0
    )
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
