"""Webhooks are signed even when WEBHOOK_SECRET is not set (issue 12, item 10): a secret is generated on
first start, kept in storage where every process finds it, and never served; and PyAV probes that
outlive their timeout cannot starve the process's shared thread pool."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from mediaflow.media import probe as probe_module
from mediaflow.media.probe_threads import PROBE_THREADS, ProbeThreadsBusyError
from mediaflow.media.sources import SourceError, parse_source
from mediaflow.settings import Settings
from mediaflow.storage.s3 import S3Storage
from mediaflow.webhooks.secret import SECRET_KEY, with_webhook_secret
from tests import media
from tests.apptools import make_settings, running_app, wait_for_final
from tests.webhook_receiver import Receiver


async def test_without_a_configured_secret_deliveries_are_signed_with_a_generated_one(tmp_path):
    settings = make_settings(tmp_path, WEBHOOK_ALLOW_PRIVATE=True)
    assert settings.WEBHOOK_SECRET is None
    media.make_clip(tmp_path / "media", "clip.mp4", width=160, height=120, seconds=1)
    secret_file = tmp_path / "storage" / SECRET_KEY
    with Receiver() as receiver:
        async with running_app(settings, api_workers=1) as api:
            job = (
                await api.post(
                    "/process", json={"source": "clip.mp4", "method_name": "compress", "callback_url": receiver.url()}
                )
            ).json()
            assert (await wait_for_final(api, job["job_id"]))["status"] == "completed"
            for _ in range(100):
                if receiver.of_type("job.completed"):
                    break
                await asyncio.sleep(0.05)
    secret = secret_file.read_text().strip()
    assert secret.startswith("whsec_") and len(secret) > 40
    assert secret_file.stat().st_mode & 0o077 == 0, "readable by its owner only"
    delivery = receiver.of_type("job.completed")[0]
    assert "MediaFlow-Signature" in delivery.headers
    assert delivery.signature_ok(secret)

    async with running_app(settings) as api:  # a restart keeps the secret
        pass
    assert secret_file.read_text().strip() == secret


@pytest.mark.backend
async def test_processes_starting_together_agree_on_one_secret_that_is_never_a_source(s3_settings):
    settings = Settings(_env_file=None, **s3_settings)
    storages = [await S3Storage.open(settings) for _ in range(4)]
    try:
        chosen = await asyncio.gather(*(with_webhook_secret(settings, storage) for storage in storages))
        secrets = {result.WEBHOOK_SECRET.get_secret_value() for result in chosen}
        assert len(secrets) == 1, secrets
        configured = Settings(_env_file=None, **s3_settings, WEBHOOK_SECRET="mine-1234")
        assert (await with_webhook_secret(configured, storages[0])).WEBHOOK_SECRET.get_secret_value() == "mine-1234"
        with pytest.raises(SourceError, match="not one this server may read"):
            parse_source(f"s3://{settings.OUTPUT_BUCKET}/{SECRET_KEY}", settings, storages[0])
    finally:
        for storage in storages:
            await storage.close()


async def test_pyav_probes_that_never_return_do_not_starve_the_shared_thread_pool(tmp_path, monkeypatch):
    """A probe stuck in C (simulated: PyAV's call blocks until released) holds its thread after its
    timeout; with 40 of them the process must still run `asyncio.to_thread` work at once."""
    release = threading.Event()
    monkeypatch.setattr(probe_module, "_probe_with_pyav", lambda path: release.wait())
    settings = make_settings(tmp_path, FFPROBE_BINARY=None)
    monkeypatch.setattr(probe_module, "ffprobe_binary", lambda settings: None)
    clip = tmp_path / "media" / "clip.mp4"
    clip.write_bytes(b"x")
    try:
        outcomes = await asyncio.gather(
            *(probe_module.probe(clip, settings, timeout=0.05) for _ in range(40)), return_exceptions=True
        )
        assert all(isinstance(outcome, probe_module.ProbeError) for outcome in outcomes), outcomes
        assert PROBE_THREADS.stuck == PROBE_THREADS.size
        with pytest.raises(ProbeThreadsBusyError):  # refused at once, not queued behind the stuck ones
            await asyncio.wait_for(probe_module.probe(clip, settings, timeout=5), 1)
        started = time.monotonic()
        await asyncio.wait_for(asyncio.to_thread(lambda: None), 2)
        assert time.monotonic() - started < 0.5, "the shared pool is free"
    finally:
        release.set()
    for _ in range(100):
        if PROBE_THREADS.stuck == 0:
            break
        await asyncio.sleep(0.02)
    assert PROBE_THREADS.stuck == 0, "threads that come back are usable again"
