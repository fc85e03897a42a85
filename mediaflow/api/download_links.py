"""Signed, expiring download links: `/download/{job_id}?token=…` works without an API key header.

A browser cannot put `X-API-Key` on a `<video src>` or a plain link, so with API keys on, the dashboard
would have to pull a whole video into memory before playing or saving it. Instead it asks
`GET /jobs/{id}/download-url` (key checked as usual) for a link that carries its own proof: an HMAC over
the job id, the job's owner and an expiry time. The link opens exactly one job's output, until it
expires, and can stream and seek like any download (the player sends Range requests on its own).

The signing key is derived from API_KEYS, so every API replica with the same configuration accepts the
same links, and changing the keys revokes every link handed out. (With API keys off the API is open
anyway, and a link grants nothing a plain request would not.)
"""

from __future__ import annotations

import hashlib
import hmac
import time

from mediaflow.api.numbers import ascii_decimal
from mediaflow.jobs.model import Job
from mediaflow.settings import Settings


def _signing_key(settings: Settings) -> bytes:
    return hashlib.sha256(b"mediaflow download links\0" + settings.API_KEYS.get_secret_value().encode()).digest()


def _signature(settings: Settings, job: Job, expires: int) -> str:
    message = f"{job.job_id}\0{job.owner or ''}\0{expires}".encode()
    return hmac.new(_signing_key(settings), message, hashlib.sha256).hexdigest()


def make_token(settings: Settings, job: Job, now: float | None = None) -> tuple[str, int]:
    """A token for `job`'s download and the unix time it expires."""
    expires = int(now if now is not None else time.time()) + settings.DOWNLOAD_URL_EXPIRES_S
    return f"{expires}.{_signature(settings, job, expires)}", expires


def token_is_valid(settings: Settings, job: Job, token: str, now: float | None = None) -> bool:
    expires_text, _, signature = token.partition(".")
    expires = ascii_decimal(expires_text, max_digits=12)
    if expires is None or expires < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(signature, _signature(settings, job, expires))
