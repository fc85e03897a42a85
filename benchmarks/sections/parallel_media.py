"""Chunked encoding on pinned cores, chunked vs single-encode quality, and the cost of a target-VMAF
search (issue 14), measured on the media steps themselves: the job model that will spread them over
workers is not built yet, so no store or queue is involved and the stack does not matter.

Two one-core "workers" are simulated the way the issue asks: every ffmpeg of a worker runs under
`taskset -c <core>` with `-threads 1` (what FFMPEG_THREADS=1 gives a worker), and the two take the
job's tasks (the chunks and the audio) from one queue in order, as workers claiming tasks would.
Split and join run on core 0 and are counted in the wall time. CPU seconds are reported next to wall
times: on a shared machine the wall figures carry other people's load, the CPU ones much less.
The source (60 s of 720p30 H.264 + AAC, light temporal noise, GOP 2 s; 20 s with --quick) is
generated once and kept in $TMPDIR/mediaflow-bench-cache.
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.sections import Section
from benchmarks.stacks import Bench
from benchmarks.table import Row
from mediaflow.media.chunking import encode_audio_argv, encode_chunk_argv, join, plan_chunks, split, verify_join
from mediaflow.media.ffmpeg import check, run_ffmpeg
from mediaflow.media.quality import Frame, measure_quality
from mediaflow.media.target_quality import search_crf
from mediaflow.media.timeline import read_timeline
from tests import media

STACK = "media steps (no job model)"
CRF = 23
CHUNK_SECONDS = 10
TARGET_VMAF = 93.0
CACHE = Path(tempfile.gettempdir()) / "mediaflow-bench-cache"

AUDIO = ["-c:a", "aac", "-b:a", "128k"]


def x264(crf: int, preset: str = "medium") -> list[str]:
    return ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p"]


def make_source(directory: Path, seconds: float) -> Path:
    """720p30 H.264 + AAC with a closed GOP every 2 s; light temporal noise so it is not trivially easy."""
    path = directory / f"source720_{seconds:g}s.mp4"
    if path.exists():
        return path
    subprocess.run(
        [
            media.ffmpeg(),
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size=1280x720:rate=30:duration={seconds},noise=alls=4:allf=t",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate=48000:duration={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "14",
            "-g",
            "60",
            "-keyint_min",
            "60",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            str(path),
        ],
        check=True,
        timeout=600,
    )
    return path


def pinned(core: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def all_cpu() -> float:
    """Child processes and this one: the search reads the samples' size with PyAV, in process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return children_cpu() + usage.ru_utime + usage.ru_stime


async def single_encode(ff: str, source: Path, output: Path, crf: int, *, core: int | None, threads: int) -> dict:
    argv = [
        ff,
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel",
        "info",
        "-i",
        str(source),
        "-map",
        "0:V:0",
        "-map",
        "0:a:0?",
        *x264(crf),
        *AUDIO,
        *(["-threads", str(threads)] if threads else []),
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        str(output),
    ]
    started, cpu = time.monotonic(), children_cpu()
    check(await run_ffmpeg(pinned(core, argv) if core is not None else argv, log_path=output.with_suffix(".log")))
    return {"wall_s": round(time.monotonic() - started, 2), "cpu_s": round(children_cpu() - cpu, 2)}


async def chunked_encode(
    ff: str, source: Path, output: Path, workdir: Path, crf: int, *, cores: list[int], chunk_seconds: float
) -> dict:
    started, cpu = time.monotonic(), children_cpu()
    timeline = await read_timeline(source)
    chunks = plan_chunks(timeline.video, chunk_seconds)
    pieces = await split(ff, source, chunks, workdir / "split")
    split_s = time.monotonic() - started
    encoded_dir = workdir / "encoded"
    encoded_dir.mkdir(parents=True, exist_ok=True)
    audio = workdir / "audio.m4a"
    tasks: asyncio.Queue[tuple[str, list[str]]] = asyncio.Queue()
    tasks.put_nowait(("audio", encode_audio_argv(ff, source, audio, AUDIO, muxer="mp4", threads=1)))
    for chunk, piece in zip(chunks, pieces, strict=True):
        tasks.put_nowait(
            (chunk.name, encode_chunk_argv(ff, piece, chunk, encoded_dir / chunk.name, x264(crf), threads=1))
        )
    spread: dict[int, list[str]] = {core: [] for core in cores}

    async def worker(core: int) -> None:
        while not tasks.empty():
            name, argv = tasks.get_nowait()
            check(await run_ffmpeg(pinned(core, argv), log_path=encoded_dir / f"{name}.log"))
            spread[core].append(name)

    await asyncio.gather(*(worker(core) for core in cores))
    joined_at = time.monotonic()
    await join(
        ff,
        [encoded_dir / c.name for c in chunks],
        output,
        audio=audio,
        muxer="mp4",
        output_options=["-movflags", "+faststart"],
        log_path=workdir / "join.log",
    )
    verdict = await verify_join(output, timeline)
    return {
        "wall_s": round(time.monotonic() - started, 2),
        "cpu_s": round(children_cpu() - cpu, 2),
        "split_s": round(split_s, 2),
        "join_s": round(time.monotonic() - joined_at, 2),
        "chunks": len(chunks),
        "tasks_per_core": {str(core): len(names) for core, names in spread.items()},
        "verified": verdict.ok,
        "problems": verdict.problems,
        **verdict.figures,
    }


async def run(bench: Bench) -> list[Row]:
    ff = media.ffmpeg()
    seconds = 20 if bench.quick else 60
    workdir = bench.workdir / "parallel"
    workdir.mkdir(parents=True, exist_ok=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    source = make_source(CACHE, seconds)
    info = await read_timeline(source)
    name = f"{seconds} s 720p H.264 medium CRF {CRF}"

    single = workdir / "single.mp4"
    one_core = await single_encode(ff, source, single, CRF, core=0, threads=1)
    two = await chunked_encode(
        ff, source, workdir / "chunked2.mp4", workdir / "c2", CRF, cores=[0, 1], chunk_seconds=CHUNK_SECONDS
    )
    speedup = one_core["wall_s"] / two["wall_s"]
    rows = [
        Row(
            "parallel",
            f"{name}: chunked on 2 pinned cores vs single encode on 1",
            STACK,
            f"{two['wall_s']:.1f} s ({two['cpu_s']:.0f} s CPU, {two['chunks']} chunks)",
            f"1 core: {one_core['wall_s']:.1f} s ({one_core['cpu_s']:.0f} s CPU)",
            speedup,
            ">= 1.7x faster",
            speedup >= 1.7,
            note=f"per core: {two['tasks_per_core']}; split {two['split_s']} s, join {two['join_s']} s",
        )
    ]

    ours, theirs = await read_timeline(workdir / "chunked2.mp4"), await read_timeline(single)
    same_frames = ours.video.frames == theirs.video.frames == info.video.frames
    duration_gap = abs(ours.video.duration - theirs.video.duration)
    av_gap = abs(ours.audio.end - ours.video.end)
    rows.append(
        Row(
            "parallel",
            "chunked output vs single encode: frames, duration, A/V",
            STACK,
            f"{ours.video.frames} frames, {ours.video.duration:.3f} s, A/V {av_gap * 1000:.0f} ms",
            f"{theirs.video.frames} frames, {theirs.video.duration:.3f} s",
            None,
            "identical frames, <= 1 frame, <= 40 ms",
            same_frames and duration_gap <= 1 / 30 and av_gap <= 0.040 and two["verified"],
        )
    )
    frame = Frame(1280, 720, 30.0)
    chunked_vmaf = (
        await measure_quality(ff, workdir / "chunked2.mp4", source, frame, workdir / "q1", metrics=["vmaf"])
    )["vmaf"]
    single_vmaf = (await measure_quality(ff, single, source, frame, workdir / "q2", metrics=["vmaf"]))["vmaf"]
    gap = chunked_vmaf["mean"] - single_vmaf["mean"]
    rows.append(
        Row(
            "parallel",
            "chunked VMAF vs single-encode VMAF (same CRF)",
            STACK,
            f"{chunked_vmaf['mean']:.2f}",
            f"{single_vmaf['mean']:.2f}",
            None,
            "within 0.5",
            abs(gap) <= 0.5,
        )
    )

    found, measured, costs = await target_search(ff, source, workdir, info.video.duration)
    rows.append(
        Row(
            "target",
            f"target_vmaf {TARGET_VMAF:g}: VMAF of the full encode",
            STACK,
            f"{measured['mean']:.2f} (CRF {found.crf})",
            f"predicted on samples {found.vmaf:.2f}",
            None,
            "93 +- 1.5",
            abs(measured["mean"] - TARGET_VMAF) <= 1.5,
            note="probes " + ", ".join(f"CRF {p.crf} -> {p.vmaf:.2f}" for p in found.probes),
        )
    )
    share = costs["search_cpu_s"] / costs["encode_cpu_s"]
    rows.append(
        Row(
            "target",
            "target_vmaf search cost vs one full encode (CPU)",
            STACK,
            f"{costs['search_cpu_s']:.0f} s CPU ({costs['search_wall_s']:.0f} s wall)",
            f"full encode {costs['encode_cpu_s']:.0f} s CPU ({costs['encode_wall_s']:.0f} s wall)",
            share,
            "<= 40%",
            share <= 0.40,
            note=f"{len(found.probes)} probes on {found.samples} x {found.sample_seconds:g} s samples",
        )
    )
    return rows


async def target_search(ff: str, source: Path, workdir: Path, duration: float):
    """Search on samples, then one full encode (video only; both unpinned, default threads).

    Both are counted in CPU seconds of ffmpeg and of this process (the search reads the samples' size
    with PyAV here), wall times beside them.
    """
    cpu, wall = all_cpu(), time.monotonic()
    found = await search_crf(
        ff,
        source,
        workdir / "search",
        target_vmaf=TARGET_VMAF,
        duration=duration,
        video_options=x264,
        frame=Frame(1280, 720, 30.0),
    )
    search_cpu, search_wall = all_cpu() - cpu, time.monotonic() - wall
    output = workdir / "target.mp4"
    cpu, wall = all_cpu(), time.monotonic()
    argv = [
        ff,
        "-hide_banner",
        "-nostdin",
        "-y",
        "-i",
        str(source),
        "-map",
        "0:V:0",
        *x264(found.crf),
        "-f",
        "mp4",
        str(output),
    ]
    check(await run_ffmpeg(argv, log_path=workdir / "target.log"))
    costs = {
        "search_cpu_s": search_cpu,
        "search_wall_s": search_wall,
        "encode_cpu_s": all_cpu() - cpu,
        "encode_wall_s": time.monotonic() - wall,
    }
    measured = await measure_quality(ff, output, source, Frame(1280, 720, 30.0), workdir / "q3", metrics=["vmaf"])
    return found, measured["vmaf"], costs


SECTION = Section("parallel", 60, run, "chunks on 2 pinned cores vs 1, chunked vs single quality, target VMAF")
