"""Multi-output jobs (issue 13), on the embedded default (`scripts/bench.py --only outputs`).

`hls_ladder`: a 3-rendition HLS ladder (1080p/720p/480p, 4 s segments) of a 30 s 1080p clip, through
MediaFlow (POST /jobs → completed, one in-process worker) against the same ladder as one hand-written
ffmpeg command, and against three separate ffmpeg runs (one per rendition: what decoding once saves).
`nine_outputs`: the issue's nine outputs from one 10 s 720p clip, per-output wall time.
"""

from __future__ import annotations

import asyncio
import resource
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from benchmarks.sections import Section
from benchmarks.stacks import STACKS, Bench
from benchmarks.table import Row
from mediaflow.media.inputs import ffmpeg_binary
from tests import media
from tests.apptools import running_app

LADDER = [(1080, "5000k"), (720, "2800k"), (480, "1400k")]
SEGMENT = 4


def hand_written_ladder(ffmpeg: str, source: Path, out: Path, preset: str) -> list[str]:
    """What someone would write by hand for the same ladder: one decode, split, one encoder per rung."""
    graph = "[0:v]split=3[a][b][c];" + ";".join(
        f"[{branch}]scale=-2:{height}[v{i}]" for i, (branch, (height, _)) in enumerate(zip("abc", LADDER, strict=False))
    )
    argv = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(source), "-filter_complex", graph]
    for i in range(3):
        argv += ["-map", f"[v{i}]"]
    argv += ["-map", "0:a:0"] * 3
    argv += [
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-pix_fmt",
        "yuv420p",
        "-sc_threshold",
        "0",
        "-force_key_frames",
        f"expr:gte(t,n_forced*{SEGMENT})",
    ]
    for i, (_, rate) in enumerate(LADDER):
        kbps = int(rate.removesuffix("k"))
        argv += [f"-b:v:{i}", rate, f"-maxrate:v:{i}", f"{kbps * 11 // 10}k", f"-bufsize:v:{i}", f"{kbps * 2}k"]
    argv += [
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-ac",
        "2",
        "-f",
        "hls",
        "-hls_time",
        str(SEGMENT),
        "-hls_playlist_type",
        "vod",
        "-var_stream_map",
        "v:0,a:0 v:1,a:1 v:2,a:2",
        "-master_pl_name",
        "master.m3u8",
        "-hls_segment_filename",
        str(out / "v%v/seg_%05d.ts"),
        str(out / "v%v/index.m3u8"),
    ]
    return argv


def separate_rendition(ffmpeg: str, source: Path, out: Path, preset: str, height: int, rate: str) -> list[str]:
    kbps = int(rate.removesuffix("k"))
    return [
        ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(source),
        "-vf",
        f"scale=-2:{height}",
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-pix_fmt",
        "yuv420p",
        "-sc_threshold",
        "0",
        "-force_key_frames",
        f"expr:gte(t,n_forced*{SEGMENT})",
        "-b:v",
        rate,
        "-maxrate",
        f"{kbps * 11 // 10}k",
        "-bufsize",
        f"{kbps * 2}k",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-ac",
        "2",
        "-f",
        "hls",
        "-hls_time",
        str(SEGMENT),
        "-hls_playlist_type",
        "vod",
        "-hls_segment_filename",
        str(out / f"{height}_%05d.ts"),
        str(out / f"{height}.m3u8"),
    ]


def _ffmpeg_cpu_seconds() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped children (ffmpeg): unlike wall time, barely moved by
    other work on a shared machine."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(argv: list[str], cpu: list[float] | None = None) -> float:
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    subprocess.run(argv, check=True, capture_output=True)
    if cpu is not None:
        cpu.append(_cpu_seconds() - cpu_started)
    return time.perf_counter() - started


async def _through_mediaflow(client, body: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    answer = await client.post("/jobs", json=body)
    assert answer.status_code == 201, answer.text
    job_id = answer.json()["job_id"]
    while (job := (await client.get(f"/jobs/{job_id}")).json())["status"] not in ("completed", "failed", "canceled"):
        await _sleep(0.5)  # in-process: the polling's own CPU would count as MediaFlow's
    assert job["status"] == "completed", job
    return time.perf_counter() - started, job


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def hls_ladder(bench: Bench, repeat: int, preset: str = "veryfast") -> dict:
    settings = bench.settings("embedded", POLL_INTERVAL_S=0.5)
    workdir = settings.SQLITE_PATH.parent
    ffmpeg = ffmpeg_binary(settings)
    clip = media.make_clip(workdir, "src1080.mp4", width=1920, height=1080, seconds=30)
    shutil.copyfile(clip, workdir / "media/src1080.mp4")
    alone, separate, through, alone_cpu, through_cpu, through_ffmpeg = [], [], [], [], [], []
    body = {
        "source": "src1080.mp4",
        "outputs": [
            {
                "name": "stream",
                "type": "hls",
                "segment_seconds": SEGMENT,
                "video": {"preset": preset},
                "renditions": [{"height": h, "bitrate": r} for h, r in LADDER],
            }
        ],
    }
    async with running_app(settings, api_workers=1) as client:
        for run in range(repeat):  # interleaved, so a busy machine weighs on both sides alike
            alone.append(_timed(hand_written_ladder(ffmpeg, clip, workdir / f"hand-{run}", preset), alone_cpu))
            cpu_started, ffmpeg_started = _cpu_seconds(), _ffmpeg_cpu_seconds()  # API + in-process worker + ffmpeg
            through.append((await _through_mediaflow(client, body))[0])
            through_cpu.append(_cpu_seconds() - cpu_started)
            through_ffmpeg.append(_ffmpeg_cpu_seconds() - ffmpeg_started)
            out = workdir / f"separate-{run}"
            out.mkdir()
            separate.append(sum(_timed(separate_rendition(ffmpeg, clip, out, preset, h, r)) for h, r in LADDER))
    return {
        "benchmark": f"HLS ladder 1080p/720p/480p of a 30 s 1080p clip, x264 preset {preset}, {SEGMENT} s segments",
        "runs": repeat,
        "hand_written_one_ffmpeg_s": _summary(alone),
        "three_separate_ffmpeg_runs_s": _summary(separate),
        "mediaflow_submit_to_completed_s": _summary(through),
        "mediaflow_vs_hand_written": round(statistics.median(through) / statistics.median(alone), 3),
        "hand_written_cpu_s": _summary(alone_cpu),
        "mediaflow_cpu_s": _summary(through_cpu),
        "mediaflow_ffmpeg_cpu_s": _summary(through_ffmpeg),
    }


async def nine_outputs(bench: Bench) -> dict:
    """The issue's nine outputs (as written there: default presets) from a 10 s 720p clip."""
    settings = bench.settings("embedded", POLL_INTERVAL_S=0.5)
    workdir = settings.SQLITE_PATH.parent
    clip = media.make_clip(workdir, "src720.mp4", width=1280, height=720, seconds=10)
    shutil.copyfile(clip, workdir / "media/src720.mp4")
    async with running_app(settings, api_workers=1) as client:
        seconds, job = await _through_mediaflow(client, {"source": "src720.mp4", "outputs": media.NINE_OUTPUTS})
    return {
        "submit_to_completed_s": round(seconds, 2),
        "outputs": {o["name"]: {"status": o["status"]} for o in job["outputs"]},
    }


def _summary(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 2), "all": [round(v, 2) for v in values]}


async def run(bench: Bench) -> list[Row]:
    ladder = await hls_ladder(bench, 1 if bench.quick else 3)
    alone = ladder["hand_written_one_ffmpeg_s"]["median"]
    through = ladder["mediaflow_submit_to_completed_s"]["median"]
    separate = ladder["three_separate_ffmpeg_runs_s"]["median"]
    alone_cpu, through_cpu = ladder["hand_written_cpu_s"]["median"], ladder["mediaflow_cpu_s"]["median"]
    ffmpeg_cpu = ladder["mediaflow_ffmpeg_cpu_s"]["median"]
    nine = await nine_outputs(bench)
    stack = STACKS["embedded"]
    return [
        Row(
            "outputs",
            "HLS 1080/720/480 of 30 s 1080p: submit -> completed",
            stack,
            f"{through:.1f} s",
            f"one hand-written ffmpeg {alone:.1f} s",
            through / alone,
            "<= 1.10x",
            through / alone <= 1.10,
        ),
        Row(
            "outputs",
            "the same ladder, CPU seconds (API + worker + ffmpeg vs ffmpeg)",
            stack,
            f"{through_cpu:.1f} s",
            f"one hand-written ffmpeg {alone_cpu:.1f} s",
            through_cpu / alone_cpu,
            "<= 1.10x",
            through_cpu / alone_cpu <= 1.10,
        ),
        Row(
            "outputs",
            "the same ladder, CPU seconds of MediaFlow's ffmpeg runs alone (its argv vs the hand-written)",
            stack,
            f"{ffmpeg_cpu:.1f} s",
            f"one hand-written ffmpeg {alone_cpu:.1f} s",
            ffmpeg_cpu / alone_cpu,
        ),
        Row(
            "outputs",
            "the same ladder as three separate ffmpeg runs (what the split saves)",
            "ffmpeg alone",
            f"{separate:.1f} s",
            f"one ffmpeg {alone:.1f} s",
            separate / alone,
        ),
        Row(
            "outputs",
            "the issue's nine outputs from 10 s 720p, one job",
            stack,
            f"{nine['submit_to_completed_s']:.1f} s",
            note=", ".join(
                f"{name}: {o['status']}" for name, o in nine["outputs"].items() if o["status"] != "completed"
            ),
        ),
    ]


SECTION = Section("outputs", 60, run, "multi-output jobs: an HLS ladder against one hand-written ffmpeg, nine outputs")
