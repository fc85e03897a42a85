"""A multi-output job on the production shape: the API (uvicorn) and a `python worker.py` on Kafka +
MongoDB + S3. Every output's files land in the bucket under OUTPUT_PREFIX/<job>/<output>/, and a player
(PyAV over HTTP) streams the HLS ladder through the API's files endpoint, following relative URIs."""

from __future__ import annotations

import uuid

import av
import httpx
import pytest

from tests.apptools import ApiServer, make_settings, start_worker, wait_for_final
from tests.test_distributed import bucket_keys, clips, put_source, stop  # noqa: F401  (clips: a fixture)

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


async def test_outputs_on_kafka_mongodb_and_s3(tmp_path, clips, kafka_settings, s3_settings, mongo_settings):  # noqa: F811
    settings = make_settings(tmp_path, **mongo_settings, **kafka_settings, **s3_settings, QUEUED_SWEEP_AFTER_S=5)
    source = await put_source(settings, f"sources-{uuid.uuid4().hex[:12]}", "in/small.mp4", clips["small"])
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
            stop([worker])
