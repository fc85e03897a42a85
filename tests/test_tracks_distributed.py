"""Tracks on the production shape: the API (uvicorn) and a `python worker.py` on Kafka + MongoDB + S3. A
source with two audio languages and subtitles becomes an HLS ladder whose alternate audio and WebVTT
renditions land in the bucket, and a player (PyAV over HTTP) follows the master through the files endpoint."""

from __future__ import annotations

import uuid

import av
import httpx
import pytest

from tests import corpus_tracks as corpus
from tests.apptools import finished_job, make_settings
from tests.helpers.s3 import bucket_keys, put_source

pytestmark = pytest.mark.backend

SPEC = [
    {"name": "web", "type": "video", "video": {"preset": "ultrafast"}},
    {
        "name": "stream",
        "type": "hls",
        "segment_seconds": 1,
        "video": {"preset": "ultrafast"},
        "renditions": [{"height": 90, "bitrate": "150k"}],
    },
]


async def test_tracks_on_kafka_mongodb_and_s3(tmp_path, kafka_settings, s3_settings, mongo_settings) -> None:
    settings = make_settings(tmp_path, **mongo_settings, **kafka_settings, **s3_settings, QUEUED_SWEEP_AFTER_S=5)
    (tmp_path / "corpus").mkdir()
    bucket = f"sources-{uuid.uuid4().hex[:12]}"
    source = await put_source(settings, bucket, "in/subtitled.mkv", corpus.subtitled_mkv(tmp_path / "corpus"))
    async with finished_job(settings, tmp_path, source, SPEC, timeout=120) as (url, job):
        assert job["status"] == "completed", job
        assert [s["bitmap"] for s in job["source_media"]["subtitle_tracks"]] == [False, False, True]
        assert all("2 subtitle tracks kept (eng, fra)" in o["notes"] for o in job["outputs"]), job["outputs"]

        prefix = f"{settings.OUTPUT_PREFIX}/{job['job_id']}/stream/"
        keys = await bucket_keys(settings, prefix)
        for name in ("audio_1_eng/index.m3u8", "subtitles_1_eng/segment_00000.vtt", "subtitles_2_fra/index.m3u8"):
            assert prefix + name in keys, keys

        master_url = f"{url}/jobs/{job['job_id']}/files/stream/master.m3u8"
        master = httpx.get(master_url).text
        assert master.count("#EXT-X-MEDIA:TYPE=SUBTITLES") == 2 and master.count("#EXT-X-MEDIA:TYPE=AUDIO") == 1
        with av.open(master_url, options={"protocol_whitelist": "http,tcp"}) as player:
            assert [s.codec_context.height for s in player.streams.video] == [90]
            assert sum(1 for _ in player.decode(video=0)) == 75  # 3 s at 25 fps, every segment fetched
