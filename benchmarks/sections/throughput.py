"""Jobs per minute with 1, 2 and 3 `python worker.py` on short jobs (2 s 320x240 compress), each
worker pinned to one CPU with taskset (round robin when there are fewer CPUs than workers) and
ffmpeg limited to one thread (FFMPEG_THREADS=1), so N workers behave like N one-core machines.

Reference: what raw ffmpeg would do with the same CPUs — 60 s / (one job's argv run alone, one
thread) x min(workers, CPUs). The API and the servers share those CPUs, as they would not on a real
cluster, so the ratio shows what MediaFlow's own overhead leaves of that ceiling.
"""

from __future__ import annotations

import time

import httpx

from benchmarks import tools
from benchmarks.sections import Section
from benchmarks.stacks import STACKS, Bench
from benchmarks.table import Row
from mediaflow.jobs.model import Method
from mediaflow.media.inputs import ffmpeg_binary
from mediaflow.media.operations import resolve_output_format
from mediaflow.media.outputs import Source, method_argv
from mediaflow.media.probe import probe
from tests import media

WORKER_COUNTS = (1, 2, 3)


def jobs_per_minute(bench: Bench, stack: str, workers: int, clip, jobs: int) -> float:
    settings = bench.settings(stack, FFMPEG_THREADS=1, API_WORKERS=0)
    base = settings.SQLITE_PATH.parent
    source = tools.place_source(settings, stack, clip)
    server = tools.start_api(settings, base)
    cpus = tools.cpu_count()
    processes = [tools.start_worker(settings, base, cpu=index % cpus) for index in range(workers)]
    try:
        tools.wait_workers_ready(base, stack, workers)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            started = time.perf_counter()
            job_ids = [tools.submit(client, source, "compress") for _ in range(jobs)]
            tools.wait_all_final(client, job_ids)
            return jobs / (time.perf_counter() - started) * 60
    finally:
        tools.stop_processes(processes)
        server.stop()


async def run(bench: Bench) -> list[Row]:
    clips = bench.workdir / "clips"
    clips.mkdir(exist_ok=True)
    clip = media.make_clip(clips, "short.mp4", width=320, height=240, seconds=2)
    jobs = 12 if bench.quick else 30
    fmt = resolve_output_format(Method.COMPRESS, None)
    settings = bench.settings("embedded")
    source = Source(clip, await probe(clip, settings), ffmpeg_binary(settings), threads=1)
    (bench.workdir / "alone-short").mkdir(exist_ok=True)
    argv = method_argv(Method.COMPRESS, fmt.name, source, bench.workdir / "alone-short")  # what the job itself runs
    alone = tools.ffmpeg_seconds(["taskset", "-c", "0", *argv], 5)
    cpus = tools.cpu_count()
    rows = []
    for stack in bench.stacks:
        rates = {}
        for count in WORKER_COUNTS:
            rates[count] = jobs_per_minute(bench, stack, count, clip, jobs)
            ceiling = 60 / alone * min(count, cpus)
            target, met = "", None
            if count == 2:
                scaling = rates[2] / rates[1]
                target, met = f">= 1.8x one worker (got {scaling:.2f}x)", scaling >= 1.8
            rows.append(
                Row(
                    "throughput",
                    f"jobs/minute, {count} worker{'s' if count > 1 else ''} "
                    f"(pinned, 1 ffmpeg thread, {jobs} short jobs)",
                    STACKS[stack],
                    f"{rates[count]:.0f}",
                    f"raw ffmpeg {ceiling:.0f}/min on {min(count, cpus)} CPU",
                    rates[count] / ceiling,
                    target,
                    met,
                )
            )
    return rows


SECTION = Section("throughput", 30, run, "jobs per minute with 1, 2 and 3 pinned workers")
