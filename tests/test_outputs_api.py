"""POST /jobs end to end on the embedded default (SQLite, embedded queue, local storage, a worker in
the API process): the job's outputs, its probed source, every file through the files endpoint (an HLS
master decoded through its relative URIs, signed links, ranges), a failing output that keeps the
others, validation answers, and the seed's POST /process untouched beside it."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from pathlib import Path

import av
import pytest

from tests import media
from tests.apptools import make_settings, running_app, wait_for_final
from tests.webhook_receiver import SECRET, Receiver

SPEC = [
    {
        "name": "web",
        "type": "video",
        "format": "mp4",
        "video": {"preset": "ultrafast", "height": 180},
        "audio": {"bitrate": "96k"},
        "clip": {"start": 0.5, "end": 2.5},
    },
    {
        "name": "stream",
        "type": "hls",
        "segment_seconds": 1,
        "video": {"preset": "ultrafast"},
        "renditions": [{"height": 360, "bitrate": "600k"}, {"height": 180, "bitrate": "250k"}],
    },
    {"name": "poster", "type": "thumbnails", "count": 2, "width": 160},
    {"name": "scrub", "type": "storyboard", "interval_seconds": 1, "columns": 3, "width": 64},
    {"name": "voice", "type": "audio", "format": "m4a", "audio": {"loudness": -18}},
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("outputs-api")
    settings = make_settings(base, WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_PRIVATE=True)
    media.make_clip(Path(settings.LOCAL_SOURCE_ROOTS[0]), "talk.mp4", width=640, height=360, seconds=3)
    media.make_clip(Path(settings.LOCAL_SOURCE_ROOTS[0]), "silent.mp4", width=320, height=180, seconds=1, audio=False)
    return settings


async def wait_for_job(client, job_id: str, timeout: float = 60) -> dict:
    return await wait_for_final(client, job_id, timeout, view="/jobs/{}")


async def test_a_job_with_many_outputs(settings, tmp_path: Path) -> None:
    async with running_app(settings, api_workers=1) as client:
        answer = await client.post("/jobs", json={"source": "talk.mp4", "outputs": SPEC})
        assert answer.status_code == 201, answer.text
        assert answer.json()["status"] == "queued"
        job = await wait_for_job(client, answer.json()["job_id"])
        assert job["status"] == "completed", job
        assert job["progress"] == 100 and job["log_url"] == f"/jobs/{job['job_id']}/log"
        media_info = job["source_media"]
        assert media_info["duration"] == pytest.approx(3.0, abs=0.1) and media_info["size"] > 0
        assert (
            media_info["video"]["width"] == 640
            and media_info["video"]["fps"] == 30
            and media_info["audio"]["codec"] == "aac"
        )
        assert [(o["name"], o["type"], o["status"], o["progress"]) for o in job["outputs"]] == [
            (o["name"], o["type"], "completed", 100) for o in SPEC
        ]
        outputs = {o["name"]: o for o in job["outputs"]}
        assert [f["path"] for f in outputs["stream"]["files"]] == [
            "stream/180p/index.m3u8",
            "stream/360p/index.m3u8",
            "stream/master.m3u8",
        ]
        assert outputs["stream"]["segments"]["count"] == 6  # 3 s in 1 s segments, two renditions
        assert [f["path"] for f in outputs["scrub"]["files"]] == ["scrub/sprite_001.jpg", "scrub/storyboard.vtt"]

        # every listed file downloads with its size and type
        for output in job["outputs"]:
            for file in output["files"]:
                got = await client.get(file["url"])
                assert got.status_code == 200 and len(got.content) == file["size"], file
                assert got.headers["content-type"].split(";")[0] == file["mime_type"]
        (tmp_path / "web.mp4").write_bytes((await client.get(outputs["web"]["files"][0]["url"])).content)
        with av.open(str(tmp_path / "web.mp4")) as c:
            assert c.duration / av.time_base == pytest.approx(2.0, abs=0.1) and c.streams.video[0].height == 180

        # a byte range, and what is not there
        ranged = await client.get(outputs["web"]["files"][0]["url"], headers={"Range": "bytes=0-9"})
        assert ranged.status_code == 206 and len(ranged.content) == 10
        for bad in ("web/../../x", "nope/a.mp4", "web", "web/missing.mp4", "files.json"):
            assert (await client.get(f"/jobs/{job['job_id']}/files/{bad}")).status_code == 404, bad

        # the whole list, and a signed base from which a player follows the playlists' relative URIs
        listing = (await client.get(f"/jobs/{job['job_id']}/files")).json()
        paths = [f["path"] for f in listing["files"]]
        assert "stream/360p/segment_00000.ts" in paths and "voice/voice.m4a" in paths and len(paths) == 15
        mirror = tmp_path / "mirror"
        for file in listing["files"]:
            target = mirror / file["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((await client.get(listing["signed_base_url"] + file["path"])).content)
        with av.open(str(mirror / "stream/master.m3u8")) as c:  # relative URIs, as a player resolves them
            assert sorted(s.codec_context.height for s in c.streams.video) == [180, 360]
            assert sum(1 for _ in c.decode(video=0)) >= 85
        master = (await client.get(listing["signed_base_url"] + "stream/master.m3u8")).text
        assert re.findall(r"RESOLUTION=(\d+x\d+)", master) == ["640x360", "320x180"]
        forged = listing["signed_base_url"].replace("/signed/", "/signed/1").rstrip("/") + "x/stream/master.m3u8"
        assert (await client.get(forged)).status_code == 403

        log = (await client.get(job["log_url"])).text
        assert "===== web.encode (completed) =====" in log and "===== voice.loudness (completed) =====" in log

        # the seed's endpoints still answer for it, in their own shape
        seed = (await client.get(f"/status/{job['job_id']}")).json()
        assert (
            seed["method_name"] is None
            and seed["status"] == "completed"
            and seed["output_path"].endswith("web/web.mp4")
        )

        # removing the job removes every file of its folder
        folder = Path(settings.LOCAL_STORAGE_DIR) / settings.OUTPUT_PREFIX / job["job_id"]
        assert len([p for p in folder.rglob("*") if p.is_file()]) == 17  # 15 files, files.json, ffmpeg.log
        assert (await client.delete(f"/jobs/{job['job_id']}")).status_code == 204
        assert not [p for p in folder.rglob("*") if p.is_file()]


async def test_a_failing_output_fails_the_job_and_keeps_the_others(settings) -> None:
    spec = [{"name": "thumbs", "type": "thumbnails", "count": 1}, {"name": "wave", "type": "waveform"}]
    with Receiver() as receiver:
        async with running_app(settings, api_workers=1) as client:
            body = {"source": "silent.mp4", "outputs": spec, "callback_url": receiver.url()}
            job_id = (await client.post("/jobs", json=body)).json()["job_id"]
            job = await wait_for_job(client, job_id)
            assert job["status"] == "failed"
            assert (
                job["error"]
                == "output 'wave' failed: the source has no audio stream, so it cannot make waveform 'wave'"
            )
            thumbs, wave = job["outputs"]
            assert (thumbs["status"], wave["status"]) == ("completed", "failed") and wave["files"] == []
            assert (await client.get(thumbs["files"][0]["url"])).status_code == 200
            assert (await client.get(f"/jobs/{job_id}/files/wave/wave.png")).status_code == 404
            metrics = (await client.get("/metrics")).text  # per output type
            assert 'mediaflow_outputs_finished_total{status="failed",type="waveform"} 1.0' in metrics
            assert 'mediaflow_outputs_finished_total{status="completed",type="thumbnails"} 1.0' in metrics
            deadline = time.monotonic() + 10
            while not receiver.of_type("job.failed") and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        (event,) = receiver.of_type("job.failed")
        assert event.signature_ok()
        outputs = event.event["data"]["outputs"]  # the final event lists the outputs and their files
        assert [(o["name"], o["status"]) for o in outputs] == [("thumbs", "completed"), ("wave", "failed")]
        assert outputs[0]["files"][0]["url"] == f"/jobs/{job_id}/files/thumbs/thumbnail_001.jpg"
        assert event.event["data"]["source_media"]["video"]["width"] == 320


async def test_cancel_and_retry(settings) -> None:
    media.make_clip(Path(settings.LOCAL_SOURCE_ROOTS[0]), "long.mp4", width=640, height=360, seconds=20, audio=False)
    slow = [
        {"name": "thumbs", "type": "thumbnails", "count": 1},
        {"name": "slow", "type": "video", "format": "webm", "video": {"codec": "vp9", "preset": "veryslow"}},
    ]
    async with running_app(settings, api_workers=1) as client:
        job_id = (await client.post("/jobs", json={"source": "long.mp4", "outputs": slow})).json()["job_id"]
        deadline = time.monotonic() + 30
        while (job := (await client.get(f"/jobs/{job_id}")).json())["outputs"][1]["status"] != "processing":
            assert time.monotonic() < deadline, job
            await asyncio.sleep(0.1)
        assert (await client.post(f"/jobs/{job_id}/cancel")).status_code == 200
        job = await wait_for_job(client, job_id)
        assert job["status"] == "canceled" and [o["status"] for o in job["outputs"]] == ["canceled", "canceled"]

        # a failed job runs again from fresh output states
        failing = [{"name": "thumbs", "type": "thumbnails", "count": 1}, {"name": "wave", "type": "waveform"}]
        job_id = (await client.post("/jobs", json={"source": "silent.mp4", "outputs": failing})).json()["job_id"]
        first = await wait_for_job(client, job_id)
        assert first["status"] == "failed"
        assert (await client.post(f"/jobs/{job_id}/retry")).json()["status"] == "queued"
        job = await wait_for_job(client, job_id)
        assert job["status"] == "failed" and job["attempts"] == 1  # retry gives a fresh attempt budget
        assert job["started_at"] > first["started_at"]  # it really ran again
        assert [o["status"] for o in job["outputs"]] == ["completed", "failed"]


async def test_templates_and_validation(settings) -> None:
    async with running_app(settings, api_workers=1) as client:
        created = await client.post("/jobs", json={"source": "talk.mp4", "template": "extract_audio"})
        assert created.status_code == 201
        job = await wait_for_job(client, created.json()["job_id"])
        assert job["status"] == "completed" and job["template"] == "extract_audio"
        assert [f["path"] for f in job["outputs"][0]["files"]] == ["extract_audio/extract_audio.mp3"]

        async def refused(body: dict) -> str:
            answer = await client.post("/jobs", json=body)
            assert answer.status_code == 422, answer.text
            return str(answer.json()["detail"])

        assert "give outputs (a list of 1 to 16 outputs) or template" in await refused({"source": "talk.mp4"})
        assert "not both" in await refused({"source": "talk.mp4", "template": "web", "outputs": SPEC[:1]})
        assert "unknown template 'nope'; choose one of: compress, extract_audio" in await refused(
            {"source": "talk.mp4", "template": "nope"}
        )
        assert "a webm file cannot hold h264 video" in await refused(
            {
                "source": "talk.mp4",
                "outputs": [{"name": "a", "type": "video", "format": "webm", "video": {"codec": "h264"}}],
            }
        )
        assert 'no type "gif" (did you mean "animation"?)' in await refused(
            {"source": "talk.mp4", "outputs": [{"name": "a", "type": "gif"}]}
        )
        assert "at most 16 items" in await refused(
            {"source": "talk.mp4", "outputs": [{"name": f"a{i}", "type": "waveform"} for i in range(17)]}
        )
        assert "output names must be unique" in await refused({"source": "talk.mp4", "outputs": [SPEC[2], SPEC[2]]})
        assert "the server has no such file" in await refused({"source": "/etc/passwd", "template": "web"})


async def test_dimensions_past_the_server_limit_are_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, MAX_INPUT_DIMENSION=1000)
    shutil.copy(media.make_clip(tmp_path, "c.mp4", width=160, height=90, seconds=1), tmp_path / "media/c.mp4")
    async with running_app(settings) as client:
        answer = await client.post(
            "/jobs", json={"source": "c.mp4", "outputs": [{"name": "big", "type": "video", "video": {"width": 1920}}]}
        )
        assert answer.status_code == 422
        assert answer.json()["detail"] == "output 'big': width 1920 is above this server's limit of 1000"


async def test_a_damaged_source_fails_the_whole_source_outputs(settings, tmp_path: Path) -> None:
    """A truncated faststart MP4 decodes until its data ends and ffmpeg exits 0: the short result is
    caught by comparing durations, as for POST /process."""
    whole = tmp_path / "whole.mp4"
    subprocess.run(
        [
            media.ffmpeg(),
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=30:duration=4",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
            "-movflags",
            "+faststart",
            str(whole),
        ],
        check=True,
    )
    data = whole.read_bytes()
    (Path(settings.LOCAL_SOURCE_ROOTS[0]) / "cut.mp4").write_bytes(data[: len(data) // 2])
    spec = [{"name": "v", "type": "video", "video": {"preset": "ultrafast"}}, {"name": "thumbs", "type": "thumbnails"}]
    async with running_app(settings, api_workers=1) as client:
        job = await wait_for_job(
            client, (await client.post("/jobs", json={"source": "cut.mp4", "outputs": spec})).json()["job_id"]
        )
        assert job["status"] == "failed" and "the source is damaged or incomplete" in job["error"], job
        assert [o["status"] for o in job["outputs"]] == ["failed", "completed"]
