"""Standard Webhooks: real deliveries (the API with an in-process worker encoding a real clip, and the
dispatcher on a real SQLite store) verified by the `standardwebhooks` library from PyPI, as a receiver
would; a tampered body and an old timestamp are refused by it."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from mediaflow.jobs.events import EventType, JobEvent
from mediaflow.webhooks.signing import WebhookSecretError, signature_headers, signing_key, standard_secret
from tests.apptools import REPO, make_settings, running_app
from tests.helpers import webhooks
from tests.helpers.webhooks import dispatcher_for, eventually, final_job
from tests.media import make_clip
from tests.webhook_receiver import Receiver

store = webhooks.store  # the fixture: one SQLite store

STANDARD_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
PLAIN_SECRET = "a plain secret, kept working"


def verify(secret: str, body: bytes, headers: dict) -> dict:
    return Webhook(secret).verify(body, headers)


async def test_a_real_delivery_verifies_with_the_standardwebhooks_library(tmp_path):
    settings = make_settings(tmp_path, WEBHOOK_SECRET=STANDARD_SECRET, WEBHOOK_ALLOW_PRIVATE=True)
    clip = make_clip(tmp_path / "media", "short.mp4", width=320, height=240, seconds=1)
    with Receiver() as receiver:
        async with running_app(settings, api_workers=1) as api:
            response = await api.post(
                "/process", json={"source": str(clip), "method_name": "compress", "callback_url": receiver.url()}
            )
            job_id = response.json()["job_id"]
            [delivery] = await eventually(lambda: receiver.of_type("job.completed"), "job.completed delivered", 60)

    headers = dict(delivery.headers)
    event = verify(STANDARD_SECRET, delivery.body, headers)
    assert event["type"] == "job.completed" and event["data"]["job_id"] == job_id
    assert delivery.headers["webhook-id"] == event["id"] == delivery.headers["MediaFlow-Event-Id"]
    assert delivery.headers["webhook-signature"].startswith("v1,")
    assert delivery.signature_ok(STANDARD_SECRET), "the deprecated header is still sent and valid"

    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verify(STANDARD_SECRET, delivery.body.replace(b"completed", b"failed"), headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verify("whsec_" + base64.b64encode(b"another key").decode(), delivery.body, headers)
    # A captured delivery replayed later: its (signed) timestamp is too old.
    old = str(int(time.time()) - 301)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(STANDARD_SECRET, delivery.body, headers | {"webhook-timestamp": old})
    replayed = signature_headers(STANDARD_SECRET, delivery.headers["webhook-id"], delivery.body, timestamp=old)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(STANDARD_SECRET, delivery.body, replayed)


async def test_a_plain_webhook_secret_is_the_whsec_key_of_its_bytes(store, tmp_path):
    with Receiver() as receiver:
        dispatcher, events = dispatcher_for(store, tmp_path, WEBHOOK_SECRET=PLAIN_SECRET)
        job = await final_job(store, receiver.url())
        events.emit(JobEvent(EventType.COMPLETED, job))
        [delivery] = await eventually(lambda: receiver.received, "delivered")
        await asyncio.wait_for(dispatcher.aclose(), 10)
    whsec = standard_secret(PLAIN_SECRET)
    assert whsec == "whsec_" + base64.b64encode(PLAIN_SECRET.encode()).decode()
    assert verify(whsec, delivery.body, dict(delivery.headers))["data"]["job_id"] == job.job_id
    assert Webhook(PLAIN_SECRET.encode()).verify(delivery.body, dict(delivery.headers)), "bytes key, same thing"
    assert delivery.standard_ok(PLAIN_SECRET) and delivery.signature_ok(PLAIN_SECRET)


def test_a_malformed_whsec_secret_fails_at_start_up(tmp_path):
    assert signing_key(STANDARD_SECRET) == b"0123456789abcdef0123456789abcdef"
    assert signing_key(STANDARD_SECRET.rstrip("=")) == signing_key(STANDARD_SECRET), "unpadded base64 is fine"
    for bad in ("whsec_", "whsec_not base64!"):
        with pytest.raises(WebhookSecretError, match="not base64"):
            signing_key(bad)
        with pytest.raises(ValueError, match="WEBHOOK_SECRET starts with 'whsec_'"):
            make_settings(tmp_path, WEBHOOK_SECRET=bad)


def test_the_docs_show_the_standardwebhooks_receiver():
    docs = (REPO / "docs" / "webhooks.md").read_text()
    assert "from standardwebhooks" in docs and "webhook-signature" in docs
    assert "deprecated" in docs.split("MediaFlow-Signature", 1)[1][:400].lower()
