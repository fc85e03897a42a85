"""Webhook signatures, the Standard Webhooks way (https://www.standardwebhooks.com) and the old way.

Standard Webhooks (what receivers should verify, with any `standardwebhooks` library):

    webhook-id:        the event id (the same on every retry: receivers deduplicate on it)
    webhook-timestamp: unix seconds of this attempt
    webhook-signature: v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>

The key comes from WEBHOOK_SECRET: a `whsec_<base64>` secret is the standard form (the key is the
decoded bytes); any other string keeps working and is used as its UTF-8 bytes, which is the same key as
`whsec_` + base64(secret) (`standard_secret` prints it for receivers).

Deprecated, sent for one more release: `MediaFlow-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>`
with the secret's UTF-8 bytes as configured (`sign` / `verify_signature`, the snippet in docs/webhooks.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from mediaflow.settings_values import STANDARD_WEBHOOK_SECRET_PREFIX, WebhookSecretError, webhook_signing_key

__all__ = [
    "WebhookSecretError",
    "sign",
    "sign_standard",
    "signature_headers",
    "signing_key",
    "standard_secret",
    "verify_signature",
]

SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300  # how old a timestamp a receiver should accept (replay window)


# The key's parsing lives with the setting (a malformed whsec_ secret fails at start-up).
signing_key = webhook_signing_key


def standard_secret(secret: str) -> str:
    """The `whsec_…` form of WEBHOOK_SECRET, as Standard Webhooks libraries take it."""
    if secret.startswith(STANDARD_WEBHOOK_SECRET_PREFIX):
        return secret
    return STANDARD_WEBHOOK_SECRET_PREFIX + base64.b64encode(signing_key(secret)).decode("ascii")


def sign_standard(key: bytes, message_id: str, timestamp: str, body: bytes) -> str:
    """The webhook-signature header value for one attempt (`v1,<base64>`)."""
    message = message_id.encode("utf-8") + b"." + timestamp.encode("ascii") + b"." + body
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_headers(secret: str | None, message_id: str, body: bytes, timestamp: str | None = None) -> dict[str, str]:
    """Every identification and signature header of one attempt: the standard ones and the deprecated
    MediaFlow-* ones. Without a secret, the ids and timestamps only (unsigned)."""
    timestamp = timestamp or str(int(time.time()))  # per attempt: a retry an hour later is still within tolerance
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "MediaFlow-Event-Id": message_id,  # deprecated: same as webhook-id
        "MediaFlow-Timestamp": timestamp,  # deprecated: same as webhook-timestamp
    }
    if secret is not None:
        headers["webhook-signature"] = sign_standard(signing_key(secret), message_id, timestamp, body)
        headers["MediaFlow-Signature"] = sign(secret, timestamp, body)  # deprecated
    return headers


# --- deprecated MediaFlow-Signature (one more release) -----------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The deprecated MediaFlow-Signature header value for one attempt."""
    message = timestamp.encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature_header: str,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Receiver side of the deprecated header: True if `body` was signed with `secret` at `timestamp`,
    no longer than `tolerance_s` ago (a captured request cannot be replayed later). The header may
    carry several comma-separated signatures (`v1=…,v1=…`); one match is enough."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body)
    candidates = [part.strip() for part in signature_header.split(",")]
    # compare_digest takes the same time wherever the strings differ: no guessing byte by byte.
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
