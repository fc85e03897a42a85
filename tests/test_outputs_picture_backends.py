"""The picture rules on the production shape (issue 23): the API (uvicorn) and a `python worker.py` on
Kafka + MongoDB + S3, with an iPhone-shaped source (HEVC 10-bit HLG, display matrix -90°) read from a
bucket. The web MP4, the HLS ladder (played over HTTP by PyAV) and the JPEG poster come out upright,
tone-mapped and tagged BT.709, exactly as on the embedded stack."""

from __future__ import annotations

import uuid

import av
import httpx
import numpy as np
import pytest

from tests import corpus
from tests.apptools import finished_job, make_settings
from tests.helpers.s3 import put_source

pytestmark = pytest.mark.backend

SPEC = [
    {"name": "web", "type": "video", "video": {"preset": "ultrafast"}},
    {"name": "stream", "type": "hls", "segment_seconds": 1, "video": {"preset": "ultrafast"}},
    {"name": "poster", "type": "thumbnails", "count": 1, "format": "jpg"},
]


def _upright(frame: av.VideoFrame) -> None:
    """Shown turned 90° clockwise, the stored top-left white corner is at the top-right."""
    luma = frame.reformat(format="gray").to_ndarray().astype(float)
    height, width = luma.shape
    assert height > width, (width, height)
    assert luma[: height // 8, -width // 8 :].mean() > 150 and luma[-height // 8 :, : width // 8].mean() < 40


async def test_a_phone_video_on_kafka_mongodb_and_s3(tmp_path, kafka_settings, s3_settings, mongo_settings) -> None:
    settings = make_settings(tmp_path, **mongo_settings, **kafka_settings, **s3_settings, QUEUED_SWEEP_AFTER_S=5)
    (tmp_path / "corpus").mkdir()
    phone = corpus.phone_hlg(tmp_path / "corpus", seconds=2)
    source = await put_source(settings, f"sources-{uuid.uuid4().hex[:12]}", "in/phone.mp4", phone)
    async with finished_job(settings, tmp_path, source, SPEC) as (url, job):
        assert job["status"] == "completed", job
        files = f"{url}/jobs/{job['job_id']}/files"
        web = tmp_path / "web.mp4"
        web.write_bytes(httpx.get(f"{files}/web/web.mp4").content)
        poster = tmp_path / "poster.jpg"
        poster.write_bytes(httpx.get(f"{files}/poster/thumbnail_001.jpg").content)
        with av.open(str(web)) as container:
            stream = container.streams.video[0]
            assert (int(stream.codec_context.color_primaries), int(stream.codec_context.color_trc)) == (1, 1)
            frame = next(container.decode(stream))
            _upright(frame)
            white = np.asarray(frame.reformat(format="gray").to_ndarray(), float)[:40, -40:].mean()
            assert white > 200, white  # tone-mapped: HLG's reference white near SDR white
        with av.open(str(poster)) as container:
            _upright(next(container.decode(video=0)))
        with av.open(f"{files}/stream/master.m3u8", options={"protocol_whitelist": "http,tcp"}) as player:
            sizes = sorted((s.codec_context.width, s.codec_context.height) for s in player.streams.video)
            assert sizes == [(144, 256), (240, 426), (360, 640)], sizes  # named by their short side
            _upright(next(player.decode(video=0)))
    notes = {output["name"]: output["notes"] for output in job["outputs"]}
    assert all("rotated 90° clockwise" in n and "tone-mapped from HLG to SDR BT.709" in n for n in notes.values())
