"""End to end on the embedded default, with real ffmpeg on clips the tests generate: the API with an
in-process worker, and separate `python worker.py` processes sharing the SQLite file."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import av
import pytest

from mediaflow.media.probe import probe
from tests import media
from tests.apptools import make_settings, running_app, start_worker, wait_for_final, worker_events


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("clips")
    return {
        "clip": media.make_clip(directory, "clip.mp4", width=640, height=360, seconds=3),
        "long720": media.make_clip(directory, "long720.mp4", width=1280, height=720, seconds=10),
        "video_only": media.make_clip(directory, "video_only.mp4", seconds=2, audio=False),
        "audio_only": media.audio_only(directory),
        "zero": media.zero_byte(directory),
        "text": media.text_as_mp4(directory),
        "truncated": media.truncated_mp4(directory),
    }


@pytest.fixture
def settings(tmp_path, clips):
    (tmp_path / "work").mkdir()
    settings = make_settings(tmp_path, WORK_DIR=tmp_path / "work")
    for path in clips.values():
        shutil.copyfile(path, tmp_path / "media" / path.name)  # a symlink pointing out would be refused
    return settings


async def watch(client, job_id: str, timeout: float = 90) -> list[tuple[str, int]]:
    """Every (status, progress) pair seen while polling quickly until the job ends."""
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = (await client.get(f"/status/{job_id}")).json()
        if not seen or seen[-1] != (body["status"], body["progress"]):
            seen.append((body["status"], body["progress"]))
        if body["status"] in ("completed", "failed", "canceled"):
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} still {seen[-1]} after {timeout} s")


def assert_progress_is_sane(seen: list[tuple[str, int]]) -> None:
    order = {"queued": 0, "processing": 1, "completed": 2}
    statuses = [status for status, _ in seen]
    assert statuses == sorted(statuses, key=order.__getitem__), seen
    progress = [value for _, value in seen]
    assert progress == sorted(progress), f"progress went backwards: {seen}"
    assert all(value < 100 for status, value in seen if status != "completed"), seen
    assert seen[-1] == ("completed", 100)


async def run_and_download(client, tmp_path: Path, source: str, method: str, fmt: str | None = None):
    body = {"source": source, "method_name": method} | ({"output_format": fmt} if fmt else {})
    response = await client.post("/process", json=body)
    assert response.status_code == 200, response.text
    job_id = response.json()["job_id"]
    seen = await watch(client, job_id)
    status = (await client.get(f"/status/{job_id}")).json()
    assert status["status"] == "completed", status
    download = await client.get(f"/download/{job_id}")
    assert download.status_code == 200
    target = tmp_path / f"{job_id}-{method}.{fmt or 'out'}"
    target.write_bytes(download.content)
    return status, seen, download, target


def top_level_boxes(path: Path) -> list[str]:
    boxes, data, offset = [], path.read_bytes(), 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        boxes.append(data[offset + 4 : offset + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        if size < 8:
            break
        offset += size
    return boxes


async def test_each_method_produces_what_the_readme_promises(settings, tmp_path):
    async with running_app(settings, api_workers=1) as client:
        # compress (10 s of 720p: long enough to watch it processing)
        status, seen, download, out = await run_and_download(client, tmp_path, "long720.mp4", "compress")
        assert_progress_is_sane(seen)
        assert any(state == "processing" for state, _ in seen), seen
        assert download.headers["content-type"] == "video/mp4"
        assert 'filename="long720_compress.mp4"' in download.headers["content-disposition"]
        info = await probe(out, settings)
        assert info.video.codec == "h264" and abs(info.duration - 10) < 0.3
        assert out.stat().st_size < (tmp_path / "media" / "long720.mp4").stat().st_size
        stored = settings.LOCAL_STORAGE_DIR  # output_path and log_path are keys relative to it
        assert status["output_path"].endswith("long720_compress.mp4") and (stored / status["output_path"]).is_file()
        assert status["log_path"].endswith("ffmpeg.log") and "libx264" in (stored / status["log_path"]).read_text()
        assert status["completed_at"] and status["error"] is None

        # extract_audio
        _, seen, download, out = await run_and_download(client, tmp_path, "clip.mp4", "extract_audio")
        assert_progress_is_sane(seen)
        assert download.headers["content-type"] == "audio/mpeg"
        info = await probe(out, settings)
        assert info.video is None and info.audio.codec == "mp3" and abs(info.duration - 3) < 0.3

        # resize
        _, seen, _, out = await run_and_download(client, tmp_path, "clip.mp4", "resize", "mkv")
        assert_progress_is_sane(seen)
        info = await probe(out, settings)
        assert (info.video.width, info.video.height, info.video.codec) == (1280, 720, "h264")
        assert info.format_name.startswith("matroska")

        # convert_format: web-optimised mp4
        _, seen, _, out = await run_and_download(client, tmp_path, "clip.mp4", "convert_format", "mp4")
        assert_progress_is_sane(seen)
        boxes = top_level_boxes(out)
        assert boxes.index("moov") < boxes.index("mdat"), boxes
        with av.open(str(out)) as container:
            video = container.streams.video[0].codec_context
            assert (video.name, video.profile, video.pix_fmt) == ("h264", "High", "yuv420p")
            assert container.streams.audio[0].codec_context.name == "aac"

        assert not list((tmp_path / "work").iterdir()), "a job left temp files behind"

        # black_and_white: no chroma left anywhere in the frames
        _, seen, _, out = await run_and_download(client, tmp_path, "clip.mp4", "black_and_white")
        assert_progress_is_sane(seen)
        with av.open(str(out)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                planes = frame.to_ndarray(format="yuv420p")
                height = frame.height
                chroma = planes[height:]
                assert abs(int(chroma.min()) - 128) <= 2 and abs(int(chroma.max()) - 128) <= 2, index
                if index >= 5:
                    break


@pytest.mark.parametrize(
    "source,method,reason",
    [
        ("zero_byte.mp4", "compress", "not a readable media file"),
        ("text.mp4", "compress", "not a readable media file"),
        ("truncated.mp4", "resize", "not a readable media file"),
        ("video_only.mp4", "extract_audio", "no audio stream"),
        ("audio_only.m4a", "resize", "no video stream"),
    ],
)
async def test_bad_media_fails_readably_and_the_worker_keeps_serving(settings, clips, source, method, reason):
    assert (Path(settings.LOCAL_SOURCE_ROOTS[0]) / source).exists(), f"fixture name changed: {source}"
    async with running_app(settings, api_workers=1) as client:
        bad = (await client.post("/process", json={"source": source, "method_name": method})).json()["job_id"]
        good = (await client.post("/process", json={"source": "clip.mp4", "method_name": "extract_audio"})).json()[
            "job_id"
        ]
        failed = await wait_for_final(client, bad)
        assert failed["status"] == "failed" and reason in failed["error"], failed
        assert failed["completed_at"] and failed["progress"] < 100
        assert (await client.get(f"/download/{bad}")).status_code == 409
        assert (await wait_for_final(client, good))["status"] == "completed"
    assert not list((Path(settings.WORK_DIR)).iterdir()), "a failed job left temp files behind"


async def test_a_failing_ffmpeg_keeps_its_log(settings, tmp_path):
    # A file whose probe succeeds but whose decode fails mid-way: the ffmpeg log must be kept.
    # The first 30% of a faststart MP4 probes as 10 s, and ffmpeg exits 0 after decoding what is there.
    faststart = tmp_path / "faststart.mp4"
    long_clip = tmp_path / "media" / "long720.mp4"
    subprocess.run(
        [
            media.ffmpeg(),
            "-loglevel",
            "error",
            "-i",
            str(long_clip),
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            str(faststart),
        ],
        check=True,
    )
    data = faststart.read_bytes()
    (tmp_path / "media" / "half.mp4").write_bytes(data[: len(data) * 3 // 10])
    async with running_app(settings, api_workers=1) as client:
        job_id = (await client.post("/process", json={"source": "half.mp4", "method_name": "compress"})).json()[
            "job_id"
        ]
        failed = await wait_for_final(client, job_id)
        assert failed["status"] == "failed" and "damaged or incomplete" in failed["error"], failed
        assert failed["log_path"] and (settings.LOCAL_STORAGE_DIR / failed["log_path"]).is_file()
        log = await client.get(f"/jobs/{job_id}/log")
        assert log.status_code == 200 and log.headers["content-type"].startswith("text/plain")


async def test_download_header_is_safe_for_any_name_and_ranges_work(settings, tmp_path):
    # HTTP headers are latin-1: the exact name goes in filename*, an ASCII fallback in filename.
    shutil.copyfile(tmp_path / "media" / "clip.mp4", tmp_path / "media" / 'видео "кот".mp4')
    async with running_app(settings, api_workers=1) as client:
        job_id = (
            await client.post("/process", json={"source": 'видео "кот".mp4', "method_name": "extract_audio"})
        ).json()["job_id"]
        assert (await wait_for_final(client, job_id))["status"] == "completed"
        download = await client.get(f"/download/{job_id}")
        # Players seek with byte ranges.
        size = len(download.content)
        part = await client.get(f"/download/{job_id}", headers={"Range": "bytes=100-199"})
        past_end = await client.get(f"/download/{job_id}", headers={"Range": f"bytes={size}-"})
    assert download.status_code == 200 and download.headers["accept-ranges"] == "bytes"
    assert part.status_code == 206 and part.content == download.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{size}" and part.headers["content-length"] == "100"
    assert past_end.status_code == 416 and past_end.headers["content-range"] == f"bytes */{size}"
    disposition = download.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="') and disposition.isascii()
    assert disposition == "attachment; filename=\"input_extract_audio.mp3\"; filename*=UTF-8''input_extract_audio.mp3"


async def test_two_worker_processes_process_twenty_jobs_exactly_once(settings, tmp_path):
    async with running_app(settings, api_workers=0) as client:
        job_ids = [
            (await client.post("/process", json={"source": "clip.mp4", "method_name": "extract_audio"})).json()[
                "job_id"
            ]
            for _ in range(20)
        ]
    workers = [start_worker(settings, tmp_path, "--burst") for _ in range(2)]
    for worker in workers:
        worker.wait(timeout=180)
    assert [worker.returncode for worker in workers] == [0, 0], [worker_events(w)[-3:] for w in workers]

    claims: Counter[str] = Counter()
    per_worker = []
    for worker in workers:
        events = worker_events(worker)
        claimed = [event["job_id"] for event in events if event["event"] == "job.claimed"]
        claims.update(claimed)
        per_worker.append(len(claimed))
    assert set(claims) == set(job_ids) and set(claims.values()) == {1}, claims
    assert all(count > 0 for count in per_worker), per_worker

    async with running_app(settings, api_workers=0) as client:
        for job_id in job_ids:
            status = (await client.get(f"/status/{job_id}")).json()
            assert status["status"] == "completed" and status["attempts"] == 1, status
