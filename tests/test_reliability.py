"""When things go wrong on the embedded default: a worker SIGKILLed mid-encode, SIGTERM during a job,
cancel, retry, time limits, and hostile media. The same crash test against Kafka + a document store
lives in tests/test_distributed.py."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from pathlib import Path

import pytest

from mediaflow.jobs.events import FailureReason
from mediaflow.jobs.model import Phase
from mediaflow.jobs.progress import PHASE_SPAN, RunProgress
from mediaflow.storage import StorageError
from mediaflow.worker.lease_keeper import time_limit
from mediaflow.worker.outcomes import StopCause
from mediaflow.worker.run_context import with_storage_retries
from tests import media
from tests.apptools import ffmpeg_processes, make_settings, running_app, start_worker, wait_for_final, worker_events

ENCODING_START = PHASE_SPAN[Phase.ENCODING][0]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("reliability-clips")
    return {
        # Long enough that a compress takes several seconds on two cores.
        "long": media.make_clip(directory, "long.mp4", width=1280, height=720, seconds=20),
        "clip": media.make_clip(directory, "clip.mp4", width=320, height=240, seconds=2),
    }


@pytest.fixture
def settings(tmp_path, clips):
    (tmp_path / "work").mkdir()
    settings = make_settings(tmp_path, LEASE_SECONDS=2, SHUTDOWN_GRACE_S=30, WORK_DIR=tmp_path / "work")
    for path in clips.values():
        shutil.copyfile(path, tmp_path / "media" / path.name)
    return settings


async def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := await predicate():
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def stored_outputs(settings, job_id: str) -> list[Path]:
    job_dir = Path(settings.LOCAL_STORAGE_DIR) / settings.OUTPUT_PREFIX / job_id
    return sorted(path for path in job_dir.iterdir() if path.name != "ffmpeg.log") if job_dir.exists() else []


async def submit(client, source="long.mp4", method="compress") -> str:
    response = await client.post("/process", json={"source": source, "method_name": method})
    assert response.status_code == 200, response.text
    return response.json()["job_id"]


async def encoding(client, job_id: str):
    body = (await client.get(f"/status/{job_id}")).json()
    return (
        body
        if body["status"] == "processing" and body["phase"] == "encoding" and body["progress"] > ENCODING_START + 1
        else None
    )


async def test_a_worker_killed_mid_encode_loses_nothing(settings, tmp_path):
    async with running_app(settings, api_workers=0) as client:
        job_id = await submit(client)
        workers = [start_worker(settings, tmp_path) for _ in range(2)]
        try:
            await wait_until(lambda: encoding(client, job_id), 60, "the job to be encoding")
            victim = next(w for w in workers if claimed(w, job_id))
            survivor = next(w for w in workers if w is not victim)
            assert list(Path(settings.WORK_DIR).glob(f"mediaflow-w{victim.pid}-*")), "the run has a temp dir"
            killed_at = time.monotonic()
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            # ffmpeg dies with its worker (parent-death signal), so nothing keeps encoding for a dead job.
            await wait_until(lambda: no_ffmpeg_for(job_id), 5, "the dead worker's ffmpeg to die")

            final = await wait_for_final(client, job_id, timeout=90)
            recovered_in = time.monotonic() - killed_at
            assert final["status"] == "completed", final
            assert final["attempts"] == 2 and final["progress"] == 100
            outputs = stored_outputs(settings, job_id)
            assert [path.name for path in outputs] == ["long_compress.mp4"]
            assert (
                final["output_path"]
                == outputs[0].resolve().relative_to(settings.LOCAL_STORAGE_DIR.resolve()).as_posix()
            )
            survivor_claims = [e for e in worker_events(survivor) if e["event"] == "job.claimed"]
            assert [e["job_id"] for e in survivor_claims] == [job_id]
            # The dead worker's temp dir (source copy, partial output) was removed by the survivor.
            assert not list(Path(settings.WORK_DIR).glob(f"mediaflow-w{victim.pid}-*"))
            # lease (2 s) + reaper interval + a full 20 s re-encode, with slack for a loaded CI machine
            assert recovered_in < 60, recovered_in
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.send_signal(signal.SIGTERM)
                    worker.wait(timeout=30)
        assert not ffmpeg_processes(f"-{job_id[:8]}-")


def claimed(worker, job_id: str) -> bool:
    return any(e["event"] == "job.claimed" and e.get("job_id") == job_id for e in worker_events(worker))


async def no_ffmpeg_for(job_id: str) -> bool:
    return not ffmpeg_processes(f"-{job_id[:8]}-")


async def test_sigterm_with_short_grace_releases_the_job(settings, tmp_path):
    settings = settings.model_copy(update={"SHUTDOWN_GRACE_S": 0.5})
    async with running_app(settings, api_workers=0) as client:
        job_id = await submit(client)
        worker = start_worker(settings, tmp_path, SHUTDOWN_GRACE_S="0.5")
        await wait_until(lambda: encoding(client, job_id), 60, "the job to be encoding")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
        status = (await client.get(f"/status/{job_id}")).json()
        assert status["status"] == "queued" and "shutting down" in status["error"], status
        assert not ffmpeg_processes(f"-{job_id[:8]}-")
        assert any(e["event"] == "job.released" for e in worker_events(worker))
        # ... and another worker finishes it.
        finisher = start_worker(settings, tmp_path, "--burst")
        assert finisher.wait(timeout=120) == 0
        final = (await client.get(f"/status/{job_id}")).json()
        assert final["status"] == "completed" and final["attempts"] == 2


async def test_sigterm_with_enough_grace_finishes_the_job(settings, tmp_path):
    async with running_app(settings, api_workers=0) as client:
        job_id = await submit(client, source="clip.mp4")
        worker = start_worker(settings, tmp_path)
        await wait_until(lambda: _processing(client, job_id), 30, "the job to start")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
        final = (await client.get(f"/status/{job_id}")).json()
        assert final["status"] == "completed" and final["attempts"] == 1, final


async def _processing(client, job_id):
    return (await client.get(f"/status/{job_id}")).json()["status"] == "processing"


async def test_cancel_stops_ffmpeg_and_retry_runs_again(settings):
    async with running_app(settings, api_workers=1) as client:
        job_id = await submit(client)
        await wait_until(lambda: encoding(client, job_id), 60, "the job to be encoding")
        assert ffmpeg_processes(f"-{job_id[:8]}-")
        canceled = await client.post(f"/jobs/{job_id}/cancel")
        assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
        started = time.monotonic()
        await wait_until(lambda: no_ffmpeg_for(job_id), 5, "ffmpeg to stop")
        assert time.monotonic() - started < 5
        await asyncio.sleep(1)
        assert (await client.get(f"/status/{job_id}")).json()["status"] == "canceled"  # the worker did not overwrite it

        assert (await client.post(f"/jobs/{job_id}/retry")).status_code == 200
        final = await wait_for_final(client, job_id, timeout=120)
        assert final["status"] == "completed" and final["error"] is None and final["attempts"] == 1


async def test_a_job_over_its_time_limit_fails_with_that_reason(settings):
    settings = settings.model_copy(update={"JOB_TIMEOUT_S": 1.5})
    async with running_app(settings, api_workers=1) as client:
        job_id = await submit(client)
        final = await wait_for_final(client, job_id, timeout=30)
        assert final["status"] == "failed" and "time limit" in final["error"] and "JOB_TIMEOUT_S" in final["error"]
        await asyncio.sleep(0.5)
        assert not ffmpeg_processes(f"-{job_id[:8]}-")


def test_stall_detector_fires_only_while_encoding(settings, tmp_path):
    limits = settings.model_copy(update={"STALL_TIMEOUT_S": 5})
    progress, started = RunProgress(), time.monotonic()
    now = time.monotonic()
    progress.enter(Phase.DOWNLOADING)
    progress.last_advance = now - 60  # a slow download is not a stall
    assert time_limit(limits, progress, started, now) is None
    progress.enter(Phase.ENCODING)
    progress.encoding(1.0, 10.0, 1.0)
    assert time_limit(limits, progress, started, time.monotonic()) is None
    progress.last_advance = now - 6
    stop = time_limit(limits, progress, started, now)
    assert stop is not None and "no progress for 5 s" in stop.reason
    assert (stop.cause, stop.failure) == (StopCause.TIME_LIMIT, FailureReason.STALLED)


def y4m_claiming(path: Path, width: int, height: int) -> Path:
    """A YUV4MPEG header claiming a frame size, followed by a few bytes instead of a frame."""
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\nFRAME\n".encode() + b"\x80" * 4096)
    return path


@pytest.mark.parametrize(
    "maker,method,reason",
    [
        (lambda d: media.zero_byte(d), "compress", "not a readable media file"),
        (lambda d: media.text_as_mp4(d), "compress", "not a readable media file"),
        (lambda d: media.truncated_mp4(d), "compress", "not a readable media file"),
        (lambda d: media.make_clip(d, "silent.mp4", seconds=1, audio=False), "extract_audio", "no audio stream"),
        (lambda d: media.audio_only(d), "resize", "no video stream"),
        # ffmpeg itself refuses 100000x100000; 9000x9000 it would try, and the size limit refuses.
        (lambda d: y4m_claiming(d / "huge.y4m", 100_000, 100_000), "compress", "not a readable media file"),
        (lambda d: y4m_claiming(d / "big.y4m", 9000, 9000), "compress", "9000x9000"),
        (lambda d: media.hls_playlist_pointing_at(d, "/etc/passwd", "list.m3u8"), "compress", "playlist"),
        (lambda d: media.hls_playlist_pointing_at(d, "http://127.0.0.1:9/x.ts", "remote.m3u8"), "compress", "playlist"),
        (lambda d: media.ffconcat_pointing_at(d, "/etc/passwd", "concat.mp4"), "compress", "playlist"),
    ],
    ids=[
        "zero-byte",
        "text",
        "truncated",
        "no-audio",
        "audio-only",
        "huge-header",
        "oversized",
        "hls-local",
        "hls-remote",
        "ffconcat",
    ],
)
async def test_hostile_and_broken_media_fail_readably(settings, tmp_path, maker, method, reason):
    source = maker(tmp_path / "media")
    async with running_app(settings, api_workers=1) as client:
        bad = await submit(client, source=source.name, method=method)
        failed = await wait_for_final(client, bad, timeout=60)
        assert failed["status"] == "failed" and reason in failed["error"], failed
        assert failed["attempts"] == 1  # a permanent failure is not retried
        good = await submit(client, source="clip.mp4", method="extract_audio")
        assert (await wait_for_final(client, good, timeout=60))["status"] == "completed"


async def test_transient_storage_errors_are_retried_with_backoff_and_permanent_ones_are_not(settings):
    calls: list[float] = []

    async def flaky():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise StorageError("connection reset", transient=True)
        return "stored"

    assert await with_storage_retries(2, flaky, "test") == "stored"  # STORAGE_RETRIES=2
    assert len(calls) == 3
    assert [round(b - a) for a, b in zip(calls, calls[1:], strict=False)] == [1, 2]  # exponential backoff

    permanent_calls = []

    async def denied():
        permanent_calls.append(1)
        raise StorageError("access denied", transient=False)

    with pytest.raises(StorageError, match="access denied"):
        await with_storage_retries(2, denied, "test")
    assert len(permanent_calls) == 1
