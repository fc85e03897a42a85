"""POST /process rate with wrk (50 connections), beside its ceilings: the same wrk against GET /healthz
on the same API process (what the HTTP stack itself can do) and, on MongoDB, the raw insert rate of the
same server (50 concurrent insert_one of a job-sized document). API only: no worker runs."""

from __future__ import annotations

import asyncio
import time
import uuid

from benchmarks import tools
from benchmarks.sections import Section
from benchmarks.stacks import STACKS, Bench
from benchmarks.table import Row

CONNECTIONS = 50


async def raw_mongo_insert_rate(url: str, seconds: float) -> float:
    """insert_one of ~700-byte documents from 50 concurrent tasks: the most a POST that writes one
    record could reach on this server."""
    from pymongo import AsyncMongoClient

    client = AsyncMongoClient(url)
    collection = client[f"raw{uuid.uuid4().hex[:8]}"]["jobs"]
    document = {"source": "x" * 400, "method_name": "compress", "status": "queued", "created_at": "2026-01-01"}
    done = 0
    deadline = time.perf_counter() + seconds

    async def one() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await collection.insert_one({**document, "job_id": uuid.uuid4().hex})
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(CONNECTIONS)))
    rate = done / (time.perf_counter() - started)
    await client.drop_database(collection.database.name)
    await client.close()
    return rate


async def run(bench: Bench) -> list[Row]:
    seconds = 5 if bench.quick else 10
    rows = []
    for stack in bench.stacks:
        settings = bench.settings(stack)
        base = settings.SQLITE_PATH.parent
        (base / "media" / "clip.mp4").write_bytes(b"only submitted, never processed")
        body = {"source": "clip.mp4", "method_name": "compress"}
        server = tools.start_api(settings, base)
        try:
            tools.wrk(f"{server.url}/process", body=body, seconds=2, workdir=base)  # warm-up
            post = tools.wrk(f"{server.url}/process", body=body, connections=CONNECTIONS, seconds=seconds, workdir=base)
            health = tools.wrk(f"{server.url}/healthz", connections=CONNECTIONS, seconds=seconds, workdir=base)
        finally:
            server.stop()
        errors = f"; {post.errors} errors" if post.errors else ""
        if stack == "embedded":
            ok = post.requests_per_s >= 1200 and post.p99_ms <= 100
            rows.append(
                Row(
                    "submit",
                    f"POST /process, {CONNECTIONS} connections (wrk)",
                    STACKS[stack],
                    str(post) + errors,
                    f"GET /healthz {health}",
                    post.requests_per_s / health.requests_per_s,
                    ">= 1,200 req/s, p99 <= 100 ms",
                    ok,
                )
            )
        else:
            raw = await raw_mongo_insert_rate(settings.MONGO_URL, seconds)
            ok = post.requests_per_s >= 0.7 * raw and post.p99_ms <= 150
            rows.append(
                Row(
                    "submit",
                    f"POST /process, {CONNECTIONS} connections (wrk)",
                    STACKS[stack],
                    str(post) + errors,
                    f"raw Mongo insert {raw:,.0f}/s; GET /healthz {health}",
                    post.requests_per_s / raw,
                    ">= 0.7x raw insert, p99 <= 150 ms",
                    ok,
                )
            )
    return rows


SECTION = Section("submit", 20, run, "POST /process rate against its ceilings")
