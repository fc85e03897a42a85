"""Benchmarks (numbers for the issues, not pass/fail tests).

    .venv/bin/python scripts/bench.py latency                 # 10 s 720p compress: MediaFlow vs ffmpeg alone
    .venv/bin/python scripts/bench.py submit-rate             # POST /process/s, Kafka + MongoDB, 50 clients
    .venv/bin/python scripts/bench.py submit-rate --backend embedded

`latency` runs the exact argv MediaFlow builds, alone, then the same job through the API with one
in-process worker (submit → completed, polling /status every 50 ms). `submit-rate` starts the servers
it needs (Tansu, SecantusDB) on 127.0.0.1, one uvicorn API process, and N concurrent clients posting
jobs for a fixed time; no worker runs, so only the submit path is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import ffmpeg_ops  # noqa: E402
from mediaflow.jobs.model import Method  # noqa: E402
from tests import media  # noqa: E402
from tests.apptools import ApiServer, make_settings, running_app, wait_for_final  # noqa: E402
from tests.servers.stack import start_kafka_and_mongo  # noqa: E402


async def latency(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="mediaflow-bench-"))
    try:
        settings = make_settings(workdir, LOG_LEVEL="WARNING", PROGRESS_WRITE_INTERVAL_S=1.0, POLL_INTERVAL_S=1.0)
        (workdir / "clips").mkdir()
        clip = media.make_clip(workdir / "clips", "src720.mp4", width=1280, height=720, seconds=10)
        shutil.copyfile(clip, workdir / "media" / "src720.mp4")
        fmt = ffmpeg_ops.resolve_output_format(Method.COMPRESS, "mp4")
        argv = ffmpeg_ops.build_argv(ffmpeg_ops.ffmpeg_binary(settings), Method.COMPRESS, clip, workdir / "alone.mp4", fmt)
        alone = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            alone.append(time.perf_counter() - started)
        through_api = []
        async with running_app(settings, api_workers=1) as client:
            for _ in range(args.repeat):
                started = time.perf_counter()
                response = await client.post("/process", json={"source": "src720.mp4", "method_name": "compress"})
                job = await wait_for_final(client, response.json()["job_id"], timeout=300)
                assert job["status"] == "completed", job
                through_api.append(time.perf_counter() - started)
        return {
            "benchmark": "10 s 1280x720 compress (libx264 CRF 28, preset medium)",
            "runs": args.repeat,
            "ffmpeg_alone_s": {"median": round(statistics.median(alone), 2), "all": [round(x, 2) for x in alone]},
            "submit_to_completed_s": {"median": round(statistics.median(through_api), 2),
                                      "all": [round(x, 2) for x in through_api]},
            "overhead_s": round(statistics.median(through_api) - statistics.median(alone), 2),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def submit_rate(args: argparse.Namespace) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="mediaflow-bench-"))
    overrides, servers = start_kafka_and_mongo(workdir, "bench") if args.backend == "kafka-mongodb" else ({}, [])
    try:
        settings = make_settings(workdir, LOG_LEVEL="WARNING", **overrides)
        (workdir / "media" / "clip.mp4").write_bytes(b"only submitted, never processed")
        with ApiServer(settings, workdir, api_workers=0, LOG_LEVEL="WARNING") as server:
            latencies: list[float] = []
            errors = 0
            body = {"source": "clip.mp4", "method_name": "compress"}
            limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
            async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
                for _ in range(20):  # warm-up: connections, topic metadata, indexes
                    await client.post("/process", json=body)
                deadline = time.perf_counter() + args.seconds

                async def one_client() -> None:
                    nonlocal errors
                    while time.perf_counter() < deadline:
                        started = time.perf_counter()
                        response = await client.post("/process", json=body)
                        latencies.append(time.perf_counter() - started)
                        errors += response.status_code != 200

                started = time.perf_counter()
                await asyncio.gather(*(one_client() for _ in range(args.clients)))
                elapsed = time.perf_counter() - started
        latencies.sort()
        return {
            "benchmark": f"POST /process, {args.backend}, one uvicorn process, {args.clients} concurrent clients",
            "seconds": round(elapsed, 1),
            "requests": len(latencies),
            "errors": errors,
            "requests_per_second": round(len(latencies) / elapsed, 1),
            "latency_ms": {"p50": round(latencies[len(latencies) // 2] * 1000, 1),
                           "p99": round(latencies[int(len(latencies) * 0.99)] * 1000, 1)},
        }
    finally:
        for process in servers:
            process.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    lat = commands.add_parser("latency")
    lat.add_argument("--repeat", type=int, default=3)
    rate = commands.add_parser("submit-rate")
    rate.add_argument("--backend", choices=["kafka-mongodb", "embedded"], default="kafka-mongodb")
    rate.add_argument("--clients", type=int, default=50)
    rate.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    report = asyncio.run(latency(args) if args.command == "latency" else submit_rate(args))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
