"""An upload's id stays with its owner (issue 12, item 2): it is not written to the server log nor sent
in webhooks (WEBHOOK_URL gets every key's events), against the real API under uvicorn."""

from __future__ import annotations

import time

import httpx

from tests import media
from tests.apptools import ApiServer, make_settings
from tests.webhook_receiver import SECRET, Receiver

ALICE = {"X-API-Key": "alice-key-123"}


def test_the_upload_id_is_in_neither_the_log_nor_the_webhook(tmp_path):
    clip = media.make_clip(tmp_path, "clip.mp4", width=160, height=120, seconds=1)
    with Receiver() as receiver:
        settings = make_settings(
            tmp_path, API_KEYS="alice:alice-key-123", WEBHOOK_URL=receiver.url(), WEBHOOK_SECRET=SECRET
        )
        with (
            ApiServer(settings, tmp_path, api_workers=1, LOG_LEVEL="INFO") as api,
            httpx.Client(base_url=api.url, headers=ALICE, timeout=30) as client,
        ):
            source = client.post("/upload", files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")}).json()[
                "source"
            ]
            upload_id = source.split("/")[2]
            job_id = client.post("/process", json={"source": source, "method_name": "compress"}).json()["job_id"]
            deadline = time.monotonic() + 60
            while not receiver.of_type("job.completed") and time.monotonic() < deadline:
                time.sleep(0.1)
            assert client.get(f"/status/{job_id}").json()["source"] == source, "the owner still sees it"
        log = api.log_path.read_text()
    event = receiver.of_type("job.completed")[0]
    assert event.event["data"]["source"] == "upload://…/clip.mp4"
    assert upload_id not in event.body.decode()
    assert job_id in log and "upload.stored" in log and "job.claimed" in log
    assert upload_id not in log
