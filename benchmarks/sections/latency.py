"""Job latency: what MediaFlow adds to ffmpeg.

- tiny job (1 s clip, extract_audio): submit -> completed, minus the same ffmpeg argv run alone.
- 10 s 720p compress: submit -> completed, as a multiple of the same x264 argv run alone.
On the embedded default the API hosts its worker (one process, a local file as source); on
Kafka + MongoDB + S3 the API and one `python worker.py` are separate processes and the source is an
s3:// object. The client polls GET /status every 10 ms, so polling adds at most that.
"""

from __future__ import annotations

import shutil
import statistics
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


def _timed_jobs(client: httpx.Client, source: str, method: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        tools.wait_final(client, tools.submit(client, source, method))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def run(bench: Bench) -> list[Row]:
    clips = bench.workdir / "clips"
    clips.mkdir(exist_ok=True)
    tiny = media.make_clip(clips, "tiny.mp4", width=640, height=360, seconds=1)
    long = media.make_clip(clips, "src720.mp4", width=1280, height=720, seconds=10)
    repeat_tiny, repeat_long = (5, 1) if bench.quick else (15, 3)
    rows = []
    for stack in bench.stacks:
        settings = bench.settings(stack)
        base = settings.SQLITE_PATH.parent
        ffmpeg = ffmpeg_binary(settings)
        alone = {}
        for name, clip, method in (("tiny", tiny, Method.EXTRACT_AUDIO), ("long", long, Method.COMPRESS)):
            fmt = resolve_output_format(method, None)
            source = Source(clip, await probe(clip, settings), ffmpeg)
            (base / f"alone-{name}").mkdir(exist_ok=True)
            argv = method_argv(method, fmt.name, source, base / f"alone-{name}")  # what the job itself runs
            alone[name] = tools.ffmpeg_seconds(argv, repeat_tiny if name == "tiny" else repeat_long)
        workers = []
        if stack == "embedded":
            for clip in (tiny, long):
                shutil.copyfile(clip, base / "media" / clip.name)
            sources = {"tiny": tiny.name, "long": long.name}
            server = tools.start_api(settings, base, api_workers=1)
        else:
            bucket = settings.OUTPUT_BUCKET + "-src"
            sources = {
                name: tools.put_s3(settings, clip, bucket, f"videos/{clip.name}")
                for name, clip in (("tiny", tiny), ("long", long))
            }
            server = tools.start_api(settings, base)
            workers.append(tools.start_worker(settings, base))
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                tools.wait_final(client, tools.submit(client, sources["tiny"], "extract_audio"), timeout=60)  # warm-up
                tiny_s = _timed_jobs(client, sources["tiny"], "extract_audio", repeat_tiny)
                long_s = _timed_jobs(client, sources["long"], "compress", repeat_long)
        finally:
            tools.stop_processes(workers)
            server.stop()
        overhead_ms = (tiny_s - alone["tiny"]) * 1000
        rows.append(
            Row(
                "latency",
                "tiny job (1 s clip, extract_audio): submit -> completed minus raw ffmpeg",
                STACKS[stack],
                f"{overhead_ms:.0f} ms (total {tiny_s * 1000:.0f} ms)",
                f"raw ffmpeg {alone['tiny'] * 1000:.0f} ms",
                tiny_s / alone["tiny"],
                "<= 60 ms",
                overhead_ms <= 60,
            )
        )
        ratio = long_s / alone["long"]
        rows.append(
            Row(
                "latency",
                "10 s 720p compress: submit -> completed",
                STACKS[stack],
                f"{long_s:.2f} s",
                f"raw ffmpeg {alone['long']:.2f} s",
                ratio,
                "<= 1.05x",
                ratio <= 1.05,
            )
        )
    return rows


SECTION = Section("latency", 10, run, "what MediaFlow adds to ffmpeg on a tiny job and a 10 s compress")
