"""The webhook signing secret when WEBHOOK_SECRET is not set: generated once, kept in storage.

Unsigned webhooks let anyone who learns a receiver's URL forge MediaFlow's events, so every delivery
is signed, configured or not. Without WEBHOOK_SECRET the first process to start generates a secret
(`whsec_` + base64 of 32 random bytes, the Standard Webhooks form) and stores it at
`.mediaflow/webhook-secret` in the storage every API and worker process of a deployment already
shares (LOCAL_STORAGE_DIR, beside the SQLite file's data dir by default; or OUTPUT_BUCKET): a data-dir
file would give each machine its own secret, and the job store has no place for settings. The write is
conditional (a local hard link, an S3 `If-None-Match: *` PUT), so processes starting together agree on
one secret. Each start logs where it is; receivers verify with that file's content. That key is never
served: not an s3:// source (media/s3_sources.py), not a job's output.
"""

from __future__ import annotations

import asyncio
import base64
import secrets

from pydantic import SecretStr

from mediaflow.logs import get_logger
from mediaflow.settings import Settings
from mediaflow.storage import ObjectNotFoundError, Storage, StorageUnavailableError
from mediaflow.storage.keys import SYSTEM_PREFIX

log = get_logger("webhooks")

SECRET_KEY = SYSTEM_PREFIX + "webhook-secret"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def where_it_is(settings: Settings, storage: Storage) -> str:
    """For the operator (server log only): the file's path, or its s3:// URI."""
    if settings.STORAGE_BACKEND == "local":
        return str((settings.LOCAL_STORAGE_DIR / SECRET_KEY).resolve())
    return storage.location(SECRET_KEY)


async def _stored(storage: Storage) -> str | None:
    try:
        stored = await storage.open_read(SECRET_KEY)
    except ObjectNotFoundError:
        return None
    text = b"".join([chunk async for chunk in stored.chunks]).decode("utf-8").strip()
    return text or None


async def _written_by_another_process(settings: Settings, storage: Storage) -> str:
    for _ in range(50):  # a conflicting conditional write on S3 may take a moment to show
        if (secret := await _stored(storage)) is not None:
            return secret
        await asyncio.sleep(0.1)
    raise StorageUnavailableError(
        f"another process is writing the webhook secret at {where_it_is(settings, storage)} but it "
        "did not appear; set WEBHOOK_SECRET"
    )


async def with_webhook_secret(settings: Settings, storage: Storage) -> Settings:
    """`settings`, with WEBHOOK_SECRET set to the stored (or newly generated) secret when it was unset."""
    if settings.WEBHOOK_SECRET is not None:
        return settings
    secret = await _stored(storage)
    if secret is None:
        candidate = new_secret()
        if await storage.put_new(SECRET_KEY, candidate.encode() + b"\n", "text/plain"):
            secret = candidate
            log.warning(
                "webhook.secret_generated",
                stored_at=where_it_is(settings, storage),
                hint="webhooks are signed with this generated secret; give it to your receivers, or set "
                "WEBHOOK_SECRET to choose one",
            )
        else:
            secret = await _written_by_another_process(settings, storage)
    log.info("webhook.secret", source="generated", stored_at=where_it_is(settings, storage))
    return settings.model_copy(update={"WEBHOOK_SECRET": SecretStr(secret)})
