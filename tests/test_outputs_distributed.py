"""A multi-output job on the production shape: the API (uvicorn) and a `python worker.py` on Kafka +
MongoDB + S3. Every output's files land in the bucket under OUTPUT_PREFIX/<job>/<output>/, and a player
(PyAV over HTTP) streams the HLS ladder through the API's files endpoint, following relative URIs."""

from __future__ import annotations

import uuid
from pathlib import Path

import av
import httpx
import pytest

from tests import media
from tests.apptools import ApiServer, make_settings, start_worker, stop_workers, wait_for_final
from tests.helpers.s3 import bucket_keys, put_source

pytestmark = pytest.mark.backend

SPEC = [
    {
        "name": "stream",
        "type": "hls",
        "segment_seconds": 1,
        "video": {"preset": "ultrafast"},
        "renditions": [{"height": 240, "bitrate": "400k"}, {"height": 120, "bitrate": "150k"}],
    },
    {"name": "poster", "type": "thumbnails", "count": 2, "width": 160},
    {"name": "voice", "type": "audio", "format": "mp3", "audio": {"loudness": -16}},
]


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("outputs-distributed-clips")
    return media.make_clip(directory, "small.mp4", width=320, height=240, seconds=2)


async def test_outputs_on_kafka_mongodb_and_s3(tmp_path, small_clip, kafka_settings, s3_settings, mongo_settings):
    settings = make_settings(tmp_path, **mongo_settings, **kafka_settings, **s3_settings, QUEUED_SWEEP_AFTER_S=5)
    source = await put_source(settings, f"sources-{uuid.uuid4().hex[:12]}", "in/small.mp4", small_clip)
    with ApiServer(settings, tmp_path) as server:
        worker = start_worker(settings, tmp_path)
        try:
            created = httpx.post(f"{server.url}/jobs", json={"source": source, "outputs": SPEC})
            assert created.status_code == 201, created.text
            job_id = created.json()["job_id"]
            async with httpx.AsyncClient(base_url=server.url) as client:
                job = await wait_for_final(client, job_id, 120, view="/jobs/{}")
            assert job["status"] == "completed", job
            assert [(o["name"], o["status"]) for o in job["outputs"]] == [(o["name"], "completed") for o in SPEC]

            prefix = f"{settings.OUTPUT_PREFIX}/{job_id}/"
            keys = await bucket_keys(settings, prefix)
            assert prefix + "stream/master.m3u8" in keys and prefix + "poster/thumbnail_002.jpg" in keys
            assert (
                prefix + "voice/voice.mp3" in keys and prefix + "files.json" in keys and prefix + "ffmpeg.log" in keys
            )

            url = f"{server.url}/jobs/{job_id}/files/stream/master.m3u8"
            with av.open(url, options={"protocol_whitelist": "http,tcp"}) as player:
                assert sorted(s.codec_context.height for s in player.streams.video) == [120, 240]
                assert sum(1 for _ in player.decode(video=0)) >= 55  # 2 s at 30 fps, every segment fetched
        finally:
            stop_workers([worker])
