"""Jobs spread over workers as tasks (`"parallel": true`): the outputs the task tests submit, a clip
slow enough to catch a chunk mid-encode, and waiting until a task of the job is running."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests import media

# A video output spread in chunks, as quick to encode as x264 allows.
PARALLEL = {"name": "main", "type": "video", "parallel": True, "video": {"preset": "ultrafast", "crf": 30}}
# The same at preset slower: a chunk of `slow_clip` takes seconds, time to act while it encodes.
SLOW = {**PARALLEL, "video": {"preset": "slower", "crf": 20}}


def slow_clip(tmp_path: Path) -> None:
    """`tmp_path/media/clip.mp4`: 480x270 noise with a 0.5 s GOP; at preset slower on one thread a 1 s
    chunk takes ~4 s to encode (time to kill it)."""
    media.detailed_clip(tmp_path / "media", "clip.mp4", width=480, height=270, seconds=3, gop_seconds=0.5, noise=20)


async def wait_task_running(client, job_id: str, kind: str = "chunk", timeout: float = 60) -> dict:
    """The first task of `kind` (chunk, audio, rendition, output) that a worker is running, from GET /jobs/{id}."""
    deadline = time.monotonic() + timeout
    while True:
        job = (await client.get(f"/jobs/{job_id}")).json()
        running = [t for t in job["tasks"] if t["kind"] == kind and t["status"] == "processing"]
        if running:
            return running[0]
        assert time.monotonic() < deadline and job["status"] in ("queued", "processing"), job
        await asyncio.sleep(0.05)
