"""Memory while moving big files: the worker's RSS (its own process, not ffmpeg's) processing a 2 GB
source from S3, and the API's RSS while streaming a 2 GB download. Both must stay flat: files are
streamed in chunks, never held in memory.

The 2 GB source is raw 720p video with PCM audio in Matroska (quick to make: no encoding), processed
with extract_audio, so the run is dominated by moving the bytes rather than by ffmpeg.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import httpx

from benchmarks import tools
from benchmarks.sections import Section
from benchmarks.stacks import STACKS, Bench
from benchmarks.table import Row
from mediaflow.jobs.model import Job, JobStatus, Method
from mediaflow.media.inputs import ffmpeg_binary
from mediaflow.store import open_store

FRAME_BYTES = 1280 * 720 * 3 // 2  # yuv420p


def make_big_source(path, size_bytes: int, settings) -> None:
    if path.exists():
        return
    seconds = max(1, size_bytes // (FRAME_BYTES * 30))
    subprocess.run(
        [
            ffmpeg_binary(settings),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size=1280x720:rate=30:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate=48000:duration={seconds}",
            "-c:v",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "pcm_s16le",
            str(path),
        ],
        check=True,
    )


async def completed_job_with_output(settings, output_path: str) -> str:
    """A completed job whose output is the big file (made directly in the store: only the download
    is measured here)."""
    store = await open_store(settings)
    try:
        job = Job(
            method_name=Method.CONVERT_FORMAT,
            source="big.mkv",
            output_format="mkv",
            status=JobStatus.COMPLETED,
            output_path=output_path,
        )
        await store.create(job)
        return job.job_id
    finally:
        await store.close()


def stream_download(url: str, job_id: str, pid: int) -> tuple[float, float, int]:
    """GET /download with the body discarded chunk by chunk; returns (RSS before, peak, bytes)."""
    received = 0
    before = tools.rss_mb(pid)
    with tools.RssSampler(pid) as sampler, httpx.stream("GET", f"{url}/download/{job_id}", timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_raw(1 << 20):
            received += len(chunk)
    return before, sampler.peak, received


async def run(bench: Bench) -> list[Row]:
    size = (200 if bench.quick else 2048) * 1024 * 1024
    label = f"{size / 1024**3:.1f} GB" if size >= 1024**3 else f"{size // 1024**2} MB"
    rows = []
    for stack in bench.stacks:
        settings = bench.settings(stack, API_WORKERS=0)
        base = settings.SQLITE_PATH.parent
        big = bench.workdir / "big.mkv"
        make_big_source(big, size, settings)
        server = tools.start_api(settings, base)
        workers = []
        try:
            if stack == "kafka":
                # In OUTPUT_BUCKET, so that the same object can then serve as a job's output to download.
                source = tools.put_s3(settings, big, settings.OUTPUT_BUCKET, "sources/big.mkv")
                worker = tools.start_worker(settings, base)
                workers.append(worker)
                await asyncio.sleep(3)  # joined, imports done: the idle RSS is the baseline
                idle = tools.rss_mb(worker.pid)
                with httpx.Client(base_url=server.url, timeout=30) as client, tools.RssSampler(worker.pid) as sampler:
                    started = time.perf_counter()
                    tools.wait_final(client, tools.submit(client, source, "extract_audio"), poll_s=0.2, timeout=1800)
                    seconds = time.perf_counter() - started
                rows.append(
                    Row(
                        "memory",
                        f"worker RSS processing a {label} source from S3 (extract_audio)",
                        STACKS[stack],
                        f"peak {sampler.peak:.0f} MB (idle {idle:.0f} MB)",
                        f"job took {seconds:.1f} s",
                        None,
                        "<= 150 MB",
                        sampler.peak <= 150,
                    )
                )
                output = source
            else:
                key = f"{settings.OUTPUT_PREFIX}/big/big.mkv"
                target = settings.LOCAL_STORAGE_DIR / key
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(big, target)
                output = str(target)
            job_id = await completed_job_with_output(settings, output)
            before, peak, received = stream_download(server.url, job_id, server.process.pid)
            assert received == big.stat().st_size, (received, big.stat().st_size)
            rows.append(
                Row(
                    "memory",
                    f"API RSS streaming a {label} download",
                    STACKS[stack],
                    f"+{peak - before:.0f} MB (from {before:.0f} to peak {peak:.0f} MB)",
                    "",
                    None,
                    "flat, <= +20 MB",
                    peak - before <= 20,
                )
            )
        finally:
            tools.stop_processes(workers)
            server.stop()
    return rows


SECTION = Section("memory", 40, run, "worker and API memory while moving a 2 GB file")
