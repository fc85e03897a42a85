"""The documented Python client (`from mediaflow.client import MediaFlow, AsyncMediaFlow`) against a real
API (`uvicorn main:app` with an in-process worker) encoding real clips: docs/cli.md's script as printed,
every method of the sync client, and the async client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import pytest

from mediaflow.client import AsyncMediaFlow, Job, JobFailedError, MediaFlow, MediaFlowError
from tests.apptools import REPO, ApiServer, make_settings
from tests.media import make_clip, text_as_mp4

API_KEY = "client-key-9d2f"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("pyclient")
    settings = make_settings(base, API_KEYS=f"me:{API_KEY}", FFMPEG_THREADS=1)
    make_clip(base / "media", "sample.mp4", width=320, height=240, seconds=2)  # the README's media/sample.mp4, short
    text_as_mp4(base / "media", "text.mp4")
    with ApiServer(settings, base, api_workers=1) as api:
        api.base = base
        yield api


def documented_script() -> str:
    section = (REPO / "docs" / "cli.md").read_text().split("## Python client", 1)[1]
    return next(
        block for block in section.split("```python\n")[1:] if "from mediaflow.client import MediaFlow" in block
    ).split("```", 1)[0]


def duration_of(path: Path) -> float:
    with av.open(str(path)) as container:
        return container.duration / av.time_base


def test_the_documented_script_runs_as_printed(server, tmp_path):
    script = documented_script()
    assert len([line for line in script.splitlines() if line.strip()]) <= 6, "a five-line script (and its import)"
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "sample.mp4").write_bytes((server.base / "media" / "sample.mp4").read_bytes())
    env = dict(os.environ, MEDIAFLOW_URL=server.url, MEDIAFLOW_API_KEY=API_KEY, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "small.mp4"
    assert any(line.startswith("100 done") for line in lines), lines
    assert abs(duration_of(tmp_path / "small.mp4") - 2) < 0.2


def test_sync_client_methods(server, tmp_path):
    with MediaFlow(server.url, API_KEY) as mf:
        assert "compress" in [method.name for method in mf.methods()]
        upload = mf.upload(server.base / "media" / "sample.mp4")
        assert upload.source.startswith("upload://") and upload.size > 0
        job = mf.submit(upload.source, "extract_audio")
        assert isinstance(job, Job) and job.status in ("queued", "processing")
        states = list(mf.follow(job.job_id))
        assert states[-1].succeeded and states[-1].progress == 100 and all(not s.done for s in states[:-1])
        assert mf.status(job.job_id).output_format == "mp3"
        saved = mf.download(job.job_id, tmp_path)  # a directory: the server's file name in it
        assert saved.parent == tmp_path and saved.suffix == ".mp3" and saved.stat().st_size > 0
        assert "Input #0" in mf.log(job.job_id)
        assert job.job_id in [listed.job_id for listed in mf.list(status="completed", limit=100)]

        failing = mf.submit("text.mp4", "compress")  # a path the server reads itself (under its media root)
        with pytest.raises(JobFailedError, match="failed") as failed:
            mf.wait(failing.job_id)
        assert failed.value.job["status"] == "failed"
        first_run = mf.wait(failing.job_id, check=False)
        assert first_run.status == "failed"
        retried = mf.retry(failing.job_id)
        assert retried.status == "queued" and retried.job_id == failing.job_id
        second_run = mf.wait(retried.job_id, check=False)
        assert second_run.status == "failed" and second_run.completed_at > first_run.completed_at
        mf.delete(retried.job_id)

        long_one = mf.submit("sample.mp4", "resize")  # seconds of encoding: canceled long before it ends
        assert mf.cancel(long_one.job_id).status == "canceled"
        with pytest.raises(JobFailedError, match="canceled"):
            mf.wait(long_one.job_id)
        with pytest.raises(MediaFlowError) as missing:
            mf.status(retried.job_id)
        assert missing.value.http_status == 404

    with MediaFlow(server.url, api_key="") as anonymous, pytest.raises(MediaFlowError, match="API key") as refused:
        anonymous.list()
    assert refused.value.http_status == 401


def test_templates_and_jobs_with_many_outputs(server):
    with MediaFlow(server.url, API_KEY) as mf:
        templates = {template.name: template for template in mf.templates()}
        assert templates["web"].builtin and {o["type"] for o in templates["web"].outputs} == {"video", "thumbnails"}
        job = mf.create_job(server.base / "media" / "sample.mp4", template="extract_audio")  # uploaded first
        assert job.source.startswith("upload://") and mf.wait(job.job_id).succeeded
        outputs = [{"type": "audio", "name": "voice", "format": "mp3", "audio": {"codec": "mp3", "bitrate": "96k"}}]
        assert mf.wait(mf.create_job("sample.mp4", outputs=outputs).job_id).succeeded
        with pytest.raises(MediaFlowError, match="either template= .* or outputs="):
            mf.create_job("sample.mp4")
        with pytest.raises(MediaFlowError) as unknown:
            mf.create_job("sample.mp4", template="no-such-template")
        assert unknown.value.http_status == 422


async def test_async_client(server, tmp_path):
    async with AsyncMediaFlow(server.url, API_KEY) as mf:
        job = await mf.submit(server.base / "media" / "sample.mp4", "resize", "mp4")  # a Path: uploaded
        assert job.source.startswith("upload://")
        states = [state async for state in mf.follow(job.job_id)]
        assert states[-1].succeeded and [s.progress for s in states] == sorted(s.progress for s in states)
        saved = await mf.download(job.job_id, tmp_path / "out.mp4")
        with av.open(str(saved)) as container:
            assert container.streams.video[0].codec_context.width == 1280
        assert (await mf.wait(job.job_id)).completed_at is not None
        assert job.job_id in [listed.job_id for listed in await mf.list(limit=100)]
        assert "web" in [template.name for template in await mf.templates()]
        many = await mf.create_job("sample.mp4", template="extract_audio")
        assert (await mf.wait(many.job_id)).succeeded
        with pytest.raises(MediaFlowError) as missing:
            await mf.status("no-such-job")
        assert missing.value.http_status == 404
