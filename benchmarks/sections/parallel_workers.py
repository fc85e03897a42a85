"""Issue 14's speed figures through the job model: real `python worker.py` processes, POST /jobs.

Two machines are simulated on one box the way the issue asks: each worker runs under `taskset -c <cpu>`
with FFMPEG_THREADS=1 and WORKER_CONCURRENCY=1, so it behaves like a one-core machine; 2 such workers
(CPUs 0 and 1) are compared with 1 (CPU 0). The API runs as its own process with no worker inside
(API_WORKERS=0, see tools.start_api), and every process shares one stack: on `embedded` the SQLite
file (the embedded queue polls it, so separate processes find each other's tasks) and the storage
folder; on `kafka` the topic, MongoDB and the bucket.

Jobs (the 720p30 source of parallel_media.py: 60 s, 20 s with --quick; x264 preset medium, CRF 23):
with 1 worker, a plain encode (`"parallel": false`), the same output with `"parallel": true`, and a 3-rendition HLS ladder
with `"parallel": true`; with 2 workers, the chunked encode, the ladder and a `target_vmaf` 93 encode.
Wall time is submit -> completed (GET /jobs polled every 0.2 s); CPU seconds are the workers' own plus
their ffmpeg runs (/proc/<pid>/stat), which a shared machine's load moves far less than wall time.
The chunked and plain outputs are downloaded through the API and compared with the source
(frames, duration, A/V) and with each other (VMAF, measured here, unpinned).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks import tools
from benchmarks.sections import Section
from benchmarks.sections.parallel_media import CACHE, CHUNK_SECONDS, CRF, TARGET_VMAF, make_source
from benchmarks.stacks import STACKS, Bench
from benchmarks.table import Row
from mediaflow.media.chunking import verify_join
from mediaflow.media.quality import Frame, measure_quality
from mediaflow.media.timeline import read_timeline
from tests import media

PRESET = "medium"
LADDER = [{"height": 720, "bitrate": "2800k"}, {"height": 480, "bitrate": "1400k"}, {"height": 360, "bitrate": "800k"}]
JOB_TIMEOUT_S = 3600  # a 60 s 720p medium encode on one busy core can take many minutes


def video_output(**extra) -> dict:
    return {"name": "main", "type": "video", "video": {"codec": "h264", "preset": PRESET, "crf": CRF}, **extra}


HLS_OUTPUT = {
    "name": "stream",
    "type": "hls",
    "parallel": True,
    "segment_seconds": 4,
    "video": {"preset": PRESET},
    "renditions": LADDER,
}
# "parallel" left to "auto": a source this short (< CHUNK_MIN_SOURCE_S) is encoded whole, the usual case
TARGET_OUTPUT = {
    "name": "main",
    "type": "video",
    "video": {"codec": "h264", "preset": PRESET, "target_vmaf": TARGET_VMAF},
}


@dataclass
class Finished:
    wall_s: float
    cpu_s: float  # the workers' CPU (their own and their ffmpeg runs') while the job ran
    job: dict

    def __str__(self) -> str:
        return f"{self.wall_s:.1f} s ({self.cpu_s:.0f} s worker CPU)"

    @property
    def busy_cores(self) -> float:
        """Worker CPU over wall time: 1 worker should keep ~1 core busy, 2 workers ~2; less means waiting
        (split, join, the queue's polling) or other people's load on the machine."""
        return self.cpu_s / self.wall_s

    @property
    def spread(self) -> str:
        """Tasks per worker, e.g. "4+3 tasks" (what each pinned worker took)."""
        counts = Counter(task.get("worker_id") for task in self.job.get("tasks", []))
        return "+".join(str(n) for _, n in counts.most_common()) + " tasks" if counts else "no tasks"


@dataclass
class Pool:
    """An API with no worker inside and `workers` pinned `python worker.py`, sharing one stack."""

    url: str
    source: str  # what POST /jobs names as the source
    processes: list

    def worker_cpu(self) -> float:
        return sum(tools.process_cpu_seconds(process.pid) for process in self.processes)

    async def run(self, client: httpx.AsyncClient, output: dict) -> Finished:
        cpu_before, started = self.worker_cpu(), time.perf_counter()
        answer = await client.post("/jobs", json={"source": self.source, "outputs": [output]})
        if answer.status_code != 201:
            raise RuntimeError(f"POST /jobs answered {answer.status_code}: {answer.text[:500]}")
        job_id = answer.json()["job_id"]
        deadline = started + JOB_TIMEOUT_S
        while (job := (await client.get(f"/jobs/{job_id}")).json())["status"] not in tools.FINAL:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"job {job_id} not finished after {JOB_TIMEOUT_S} s")
            await asyncio.sleep(0.2)
        wall = time.perf_counter() - started
        if job["status"] != "completed":
            raise RuntimeError(f"job {job_id} ended {job['status']}: {job.get('error')} {job.get('outputs')}")
        return Finished(wall, self.worker_cpu() - cpu_before, job)


@contextmanager
def pool(bench: Bench, stack: str, source_file: Path, workers: int) -> Iterator[Pool]:
    settings = bench.settings(
        stack, FFMPEG_THREADS=1, WORKER_CONCURRENCY=1, CHUNK_SECONDS=CHUNK_SECONDS, API_WORKERS=0, POLL_INTERVAL_S=0.2
    )
    base = settings.SQLITE_PATH.parent
    source = tools.place_source(settings, stack, source_file)
    server = tools.start_api(settings, base)
    processes = []
    try:
        processes += [tools.start_worker(settings, base, cpu=cpu) for cpu in range(workers)]
        tools.wait_workers_ready(base, stack, workers)
        yield Pool(server.url, source, processes)
    finally:  # by PID, on success and on error alike
        tools.stop_processes(processes)
        server.stop()


async def download(client: httpx.AsyncClient, job: dict, destination: Path) -> Path:
    """The job's one video file, through GET /jobs/{id}/files/... (S3 or local alike)."""
    files = (await client.get(f"/jobs/{job['job_id']}/files")).json()["files"]
    path = next(f["path"] for f in files if f["path"].endswith(".mp4"))
    async with client.stream("GET", f"/jobs/{job['job_id']}/files/{path}") as answer:
        answer.raise_for_status()
        with destination.open("wb") as out:
            async for block in answer.aiter_bytes(1 << 20):
                out.write(block)
    return destination


async def measure(bench: Bench, stack: str, source: Path, workdir: Path) -> dict:
    results: dict = {}
    for workers in (1, 2):
        with pool(bench, stack, source, workers) as running:
            async with httpx.AsyncClient(base_url=running.url, timeout=60) as client:
                if workers == 1:
                    results["single"] = await running.run(client, video_output(parallel=False))
                    await download(client, results["single"].job, workdir / "single.mp4")
                results[f"chunked{workers}"] = await running.run(client, video_output(parallel=True))
                if workers == 2:
                    await download(client, results["chunked2"].job, workdir / "chunked.mp4")
                results[f"hls{workers}"] = await running.run(client, HLS_OUTPUT)
                if workers == 2:
                    results["target"] = await running.run(client, TARGET_OUTPUT)
    return results


async def compare_outputs(source: Path, workdir: Path) -> dict:
    ff = media.ffmpeg()
    source_timeline = await read_timeline(source)
    chunked, single = await read_timeline(workdir / "chunked.mp4"), await read_timeline(workdir / "single.mp4")
    verdict = await verify_join(workdir / "chunked.mp4", source_timeline)
    frame = Frame(1280, 720, 30.0)
    vmaf = {}
    for name in ("chunked", "single"):
        scores = await measure_quality(
            ff, workdir / f"{name}.mp4", source, frame, workdir / f"q-{name}", metrics=["vmaf"]
        )
        vmaf[name] = scores["vmaf"]["mean"]
    return {
        "source_frames": source_timeline.video.frames,
        "chunked": chunked,
        "single": single,
        "verdict": verdict,
        "vmaf": vmaf,
    }


def rows_for(stack: str, name: str, results: dict, compared: dict) -> list[Row]:
    label = STACKS[stack]
    one, two, single = results["chunked1"], results["chunked2"], results["single"]
    speedup = one.wall_s / two.wall_s
    rows = [
        Row(
            "parallel_workers",
            f"{name}, parallel: 2 pinned workers vs 1 (submit -> completed)",
            label,
            f"{two} {two.spread}",
            f"1 worker: {one} {one.spread}",
            speedup,
            ">= 1.7x faster",
            speedup >= 1.7,
            note=busy(one, two),
        ),
        Row(
            "parallel_workers",
            f"{name}, not parallel: 1 pinned worker (for reference)",
            label,
            str(single),
            f"parallel on 2 workers: {two.wall_s:.1f} s",
            single.wall_s / two.wall_s,
        ),
    ]
    chunked, plain, verdict = compared["chunked"].video, compared["single"].video, compared["verdict"]
    av = verdict.figures.get("av_difference")
    same_frames = chunked.frames == plain.frames == compared["source_frames"]
    duration_gap = abs(chunked.duration - plain.duration)
    rows.append(
        Row(
            "parallel_workers",
            "parallel output vs plain encode: frames, duration, A/V",
            label,
            f"{chunked.frames} frames, {chunked.duration:.3f} s, A/V {av * 1000 if av is not None else float('nan'):.0f} ms",
            f"{plain.frames} frames, {plain.duration:.3f} s (source {compared['source_frames']})",
            None,
            "identical frames, <= 1 frame, <= 40 ms",
            same_frames and duration_gap <= 1 / 30 + 1e-3 and verdict.ok,
            note="; ".join(verdict.problems + output_notes(two.job)),
        )
    )
    vmaf = compared["vmaf"]
    rows.append(
        Row(
            "parallel_workers",
            f"parallel output VMAF vs plain encode VMAF (CRF {CRF})",
            label,
            f"{vmaf['chunked']:.2f}",
            f"{vmaf['single']:.2f}",
            None,
            "within 0.5",
            abs(vmaf["chunked"] - vmaf["single"]) <= 0.5,
        )
    )
    hls1, hls2 = results["hls1"], results["hls2"]
    hls_speedup = hls1.wall_s / hls2.wall_s
    rows.append(
        Row(
            "parallel_workers",
            "3-rendition HLS (720/480/360), parallel: 2 pinned workers vs 1",
            label,
            f"{hls2} {hls2.spread}",
            f"1 worker: {hls1} {hls1.spread}",
            hls_speedup,
            ">= 1.6x faster",
            hls_speedup >= 1.6,
            note=busy(hls1, hls2),
        )
    )
    target = results["target"]
    search = target.job["outputs"][0].get("crf_search") or {}
    measured = search.get("vmaf")
    rows.append(
        Row(
            "parallel_workers",
            f"target_vmaf {TARGET_VMAF:g} through a job: VMAF of the output",
            label,
            "none reported" if measured is None else f"{measured:.2f} (CRF {search.get('crf')})",
            f"job {target}",
            None,
            "93 +- 1.5",
            measured is not None and abs(measured - TARGET_VMAF) <= 1.5,
            note=f"predicted on samples {search.get('predicted_vmaf')}; search {search.get('seconds')} s",
        )
    )
    return rows


def busy(one: Finished, two: Finished) -> str:
    return (
        f"cores kept busy (worker CPU / wall): 1 worker {one.busy_cores:.2f}, 2 workers {two.busy_cores:.2f}; "
        f"worker CPU 2 workers / 1: {two.cpu_s / one.cpu_s:.2f}"
    )


def output_notes(job: dict) -> list[str]:
    """The output's notes: how it was chunked, or why a failed join check fell back to a single encode."""
    return [note for output in job.get("outputs", []) for note in output.get("notes", [])]


async def run(bench: Bench) -> list[Row]:
    if shutil.which("taskset") is None:
        raise RuntimeError("taskset is missing: install util-linux (Debian: apt-get install -y util-linux)")
    if tools.cpu_count() < 2:
        raise RuntimeError(f"two pinned workers need 2 CPUs; this process may use {tools.cpu_count()}")
    seconds = 20 if bench.quick else 60
    CACHE.mkdir(parents=True, exist_ok=True)
    source = make_source(CACHE, seconds)
    name = f"{seconds} s 720p30 H.264 {PRESET} CRF {CRF}"
    rows = []
    for stack in bench.stacks:
        workdir = bench.workdir / f"workers-{stack}"
        workdir.mkdir(parents=True, exist_ok=True)
        results = await measure(bench, stack, source, workdir)
        rows += rows_for(stack, name, results, await compare_outputs(source, workdir))
    return rows


SECTION = Section(
    "parallel_workers", 65, run, "chunked encode and HLS ladder on 2 pinned worker processes vs 1, target VMAF"
)
