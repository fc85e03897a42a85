"""Webhook signatures: `MediaFlow-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>`.

`sign` is the sender's side (webhooks.py); `verify_signature` the receiver's, the same code as the
README's snippet (a test checks they agree). The timestamp is signed with the body, so a captured
request cannot be replayed outside the tolerance window.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300  # how old a timestamp a receiver should accept (replay window)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The MediaFlow-Signature header value for one attempt."""
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
    """Receiver side: True if `body` was signed with `secret` at `timestamp`, no longer than
    `tolerance_s` ago (a captured request cannot be replayed later). The header may carry several
    comma-separated signatures (`v1=…,v1=…`); one match is enough. Same code as in README."""
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
