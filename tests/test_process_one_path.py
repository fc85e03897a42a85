"""POST /process runs through the outputs path: a one-output job from its method's template, with the
seed's contract kept (GET /status, the output's key, the folder's shape, /download) and the job's view
of POST /jobs added (GET /jobs/{id} names the template and shows the one output and its file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediaflow.jobs.model import Job, Method
from mediaflow.jobs.schemas import JobStatusResponse
from tests import media
from tests.apptools import make_settings, running_app, wait_for_final


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory):
    settings = make_settings(tmp_path_factory.mktemp("process-one-path"))
    media.make_clip(Path(settings.LOCAL_SOURCE_ROOTS[0]), "talk.mp4", width=320, height=240, seconds=2)
    media.make_clip(Path(settings.LOCAL_SOURCE_ROOTS[0]), "mute.mp4", width=160, height=120, seconds=1, audio=False)
    return settings


def job_folder(settings, job_id: str) -> Path:
    return Path(settings.LOCAL_STORAGE_DIR) / settings.OUTPUT_PREFIX / job_id


async def test_a_process_job_is_its_methods_template_with_the_seeds_contract(settings) -> None:
    async with running_app(settings, api_workers=1) as client:
        answer = await client.post(
            "/process", json={"source": "talk.mp4", "method_name": "resize", "output_format": "MKV"}
        )
        assert answer.status_code == 200 and answer.json()["status"] == "queued", answer.text
        job_id = answer.json()["job_id"]
        status = await wait_for_final(client, job_id)

        # /status: the seed's shape, the method and format as asked, the output at the seed's key.
        assert list(status) == list(JobStatusResponse.model_fields)
        assert (status["status"], status["method_name"], status["output_format"]) == ("completed", "resize", "mkv")
        assert status["output_path"].endswith(f"{settings.OUTPUT_PREFIX}/{job_id}/talk_resize.mkv")
        folder = job_folder(settings, job_id)
        assert sorted(p.name for p in folder.iterdir() if p.name != "ffmpeg.log") == ["talk_resize.mkv"]

        # GET /jobs/{id}: the template it came from, its one output and that output's one file.
        job = (await client.get(f"/jobs/{job_id}")).json()
        assert job["template"] == "resize"
        [spec] = job["outputs_spec"]
        assert (spec["type"], spec["name"], spec["format"], spec["parallel"]) == ("video", "resize", "mkv", False)
        [output] = job["outputs"]
        assert (output["name"], output["type"], output["status"]) == ("resize", "video", "completed")
        assert [(f["path"], f["mime_type"]) for f in output["files"]] == [("talk_resize.mkv", "video/x-matroska")]
        assert job["source_media"]["video"]["width"] == 320

        # The same bytes by /download (the seed's way) and by the job's file URL (POST /jobs's way).
        downloaded = await client.get(f"/download/{job_id}")
        assert downloaded.status_code == 200 and downloaded.headers["content-type"] == "video/x-matroska"
        by_url = await client.get(output["files"][0]["url"])
        assert by_url.status_code == 200 and by_url.content == downloaded.content
        assert by_url.content == (folder / "talk_resize.mkv").read_bytes()
        listed = (await client.get(f"/jobs/{job_id}/files")).json()["files"]
        assert [f["path"] for f in listed] == ["talk_resize.mkv"]
        # Only what the output lists: not its file under another name, not the log beside it.
        assert (folder / "ffmpeg.log").is_file()
        for other in ("resize.mkv", "ffmpeg.log"):
            assert (await client.get(f"/jobs/{job_id}/files/{other}")).status_code == 404, other


async def test_a_failed_process_job_says_why_in_the_seeds_words(settings) -> None:
    async with running_app(settings, api_workers=1) as client:
        answer = await client.post("/process", json={"source": "mute.mp4", "method_name": "extract_audio"})
        job_id = answer.json()["job_id"]
        status = await wait_for_final(client, job_id)
        assert status["status"] == "failed"
        assert status["error"] == "the source has no audio stream, so there is no audio to extract"
        job = (await client.get(f"/jobs/{job_id}")).json()
        assert [(o["name"], o["status"]) for o in job["outputs"]] == [("extract_audio", "failed")]
        assert (await client.get(f"/jobs/{job_id}/files")).json()["files"] == []


async def test_a_process_job_queued_before_its_record_carried_outputs_still_runs(settings) -> None:
    """A rolling upgrade: a /process record written by the previous version has no outputs on it."""
    async with running_app(settings, api_workers=1) as client:
        state = client.app.state  # type: ignore[attr-defined]  # set by running_app
        old = Job(source="talk.mp4", method_name=Method.COMPRESS, output_format="mp4")
        await state.store.create(old)
        await state.queue.publish(old.job_id)
        status = await wait_for_final(client, old.job_id)
        assert status["status"] == "completed", status
        assert status["output_path"].endswith(f"{old.job_id}/talk_compress.mp4")
        [output] = (await client.get(f"/jobs/{old.job_id}")).json()["outputs"]
        assert output["status"] == "completed" and output["files"][0]["path"] == "talk_compress.mp4"
