"""Nothing a user sees names a path or an internal address of the server (issue 12, item 7): output
and log locations, the stored ffmpeg log, job errors, source 422s, /readyz without a key, callback
422s. The detail stays in the server log."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests import media
from tests.apptools import make_settings, running_app, wait_for_final

ALICE = {"X-API-Key": "alice-key-123"}


@pytest.fixture
async def api(tmp_path):
    settings = make_settings(tmp_path, WORK_DIR=tmp_path / "work")
    (tmp_path / "work").mkdir()
    media.make_clip(tmp_path / "media", "clip.mp4", width=160, height=120, seconds=2)
    media.text_as_mp4(tmp_path / "media", "text.mp4")
    async with running_app(settings, api_workers=1) as client:
        client.base = tmp_path
        yield client


async def test_a_completed_job_shows_storage_keys_and_a_log_without_server_paths(api):
    job_id = (await api.post("/process", json={"source": "clip.mp4", "method_name": "compress"})).json()["job_id"]
    done = await wait_for_final(api, job_id)
    assert done["status"] == "completed", done
    assert done["output_path"] == f"processed/{job_id}/clip_compress.mp4"
    assert done["log_path"] == f"processed/{job_id}/ffmpeg.log"
    assert (api.base / "storage" / done["output_path"]).is_file(), "relative to LOCAL_STORAGE_DIR"
    download = await api.get(f"/download/{job_id}")
    assert download.status_code == 200 and download.content == (api.base / "storage" / done["output_path"]).read_bytes()
    log = (await api.get(f"/jobs/{job_id}/log")).text
    assert "libx264" in log and "from 'file:media/clip.mp4'" in log, log[:2000]
    assert str(api.base) not in log and "mediaflow-w" not in log


async def test_a_failed_jobs_error_and_log_have_no_server_paths(api):
    # The first 30 % of a faststart MP4 probes fine; ffmpeg then fails on it, and its log is kept.
    faststart = api.base / "faststart.mp4"
    subprocess.run(
        [
            media.ffmpeg(),
            "-loglevel",
            "error",
            "-i",
            str(api.base / "media" / "clip.mp4"),
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            str(faststart),
        ],
        check=True,
    )
    data = faststart.read_bytes()
    (api.base / "media" / "half.mp4").write_bytes(data[: len(data) * 3 // 10])
    for source in ("text.mp4", "half.mp4"):
        job_id = (await api.post("/process", json={"source": source, "method_name": "compress"})).json()["job_id"]
        failed = await wait_for_final(api, job_id)
        assert failed["status"] == "failed" and failed["error"], failed
        assert str(api.base) not in failed["error"] and "mediaflow-w" not in failed["error"]
    log = await api.get(f"/jobs/{job_id}/log")
    assert log.status_code == 200 and "half.mp4" in log.text
    assert str(api.base) not in log.text, log.text[:1000]


async def test_a_source_422_names_roots_as_users_know_them(api):
    response = await api.post("/process", json={"source": "nope.mp4", "method_name": "compress"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("nope.mp4: the server has no such file under media/"), detail
    assert str(api.base) not in detail


async def test_a_callback_422_does_not_say_what_an_internal_name_resolves_to(api):
    response = await api.post(
        "/process", json={"source": "clip.mp4", "method_name": "compress", "callback_url": "http://localhost:9/hook"}
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "resolves to a loopback address" in detail and "127.0.0.1" not in detail and "::1" not in detail, detail


async def test_readyz_tells_why_only_to_a_key(tmp_path):
    settings = make_settings(tmp_path, API_KEYS="alice:alice-key-123")
    async with running_app(settings) as client:
        storage_dir = tmp_path / "storage"
        shutil.rmtree(storage_dir, ignore_errors=True)
        storage_dir.write_text("not a directory any more")  # the storage check now fails
        anonymous = await client.get("/readyz")
        assert anonymous.status_code == 503
        assert anonymous.json()["backends"]["storage:local"] == "unavailable"
        assert str(tmp_path) not in anonymous.text
        keyed = await client.get("/readyz", headers=ALICE)
        assert keyed.status_code == 503 and str(storage_dir) in keyed.json()["backends"]["storage:local"]
        storage_dir.unlink()
