"""The picture rules on the spread paths (issue 23): a phone's HLG video held upright, encoded in chunks
by two `python worker.py` processes and as an HEVC HLS ladder with one task per rendition. Every
chunk and every rendition task builds its command from the same description, so the joined file and
the merged master playlist must be what one worker would have made: upright, tone-mapped, or HDR
with its VIDEO-RANGE."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from mediaflow.media.timeline import read_timeline
from tests import corpus
from tests.apptools import make_settings, running_app, start_worker, stop_workers, wait_for_final

SPEC = [
    {"name": "web", "type": "video", "parallel": True, "video": {"preset": "ultrafast"}},
    {
        "name": "stream",
        "type": "hls",
        "parallel": True,
        "segment_seconds": 1,
        "video": {"codec": "h265", "preset": "ultrafast", "hdr": "keep"},
    },
]


@pytest.fixture
def settings(tmp_path: Path):
    (tmp_path / "work").mkdir()
    return make_settings(tmp_path, WORK_DIR=tmp_path / "work", CHUNK_SECONDS=0.8, LEASE_SECONDS=3)


async def test_a_phone_video_spread_over_two_workers(settings, tmp_path: Path) -> None:
    source = corpus.phone_hlg(Path(settings.LOCAL_SOURCE_ROOTS[0]))
    workers = [start_worker(settings, tmp_path) for _ in range(2)]
    try:
        async with running_app(settings) as client:
            answer = await client.post("/jobs", json={"source": source.name, "outputs": SPEC})
            assert answer.status_code == 201, answer.text
            job = await wait_for_final(client, answer.json()["job_id"], 180, view="/jobs/{}")
            assert job["status"] == "completed", job
            web = tmp_path / "web.mp4"
            web.write_bytes((await client.get(f"/jobs/{job['job_id']}/files/web/web.mp4")).content)
            master = (await client.get(f"/jobs/{job['job_id']}/files/stream/master.m3u8")).text
    finally:
        stop_workers(workers)
    kinds = sorted(task["kind"] for task in job["tasks"])
    assert kinds.count("chunk") >= 3 and kinds.count("rendition") == 3, kinds
    notes = {output["name"]: output["notes"] for output in job["outputs"]}
    # joined from its chunks, not encoded again in one piece after a failed join check
    assert "encoded in 3 chunks, joined and checked against the source" in notes["web"], notes
    # the chunked output and the rendition-task ladder say what the picture rules did, as whole ones do
    assert {"rotated 90° clockwise", "tone-mapped from HLG to SDR BT.709"} <= set(notes["web"]), notes
    assert "rotated 90° clockwise" in notes["stream"] and not any("tone-mapped" in n for n in notes["stream"]), notes
    timeline = await read_timeline(web)
    assert timeline.video is not None and timeline.video.frames == 75  # 3 s at 25 fps: no frame lost at a join
    with av.open(str(web)) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(stream))
        assert (frame.width, frame.height, frame.rotation) == (360, 640, 0)
        assert (int(stream.codec_context.color_primaries), int(stream.codec_context.color_trc)) == (1, 1)
        luma = frame.reformat(format="gray").to_ndarray().astype(float)
    # shown turned 90° clockwise, the stored top-left corner is at the top-right
    assert luma[:80, -45:].mean() > 150 and luma[-80:, :45].mean() < 40
    variants = [line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF")]
    assert len(variants) == 3 and all("VIDEO-RANGE=HLG" in v and 'CODECS="hvc1.2.' in v for v in variants), master
    assert "RESOLUTION=360x640" in master and "RESOLUTION=144x256" in master
