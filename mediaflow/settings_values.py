"""Parsing and checking setting values that are more than one scalar: comma-separated lists, API keys,
webhook signing secrets. Here, apart from the fields in settings.py, so what a value means can be
tested and reused (api/auth.py, webhooks/signing.py) without the whole settings object."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass


def comma_list(value: str) -> list[str]:
    """`a, b,c` (or a JSON array, as tools that write .env files from lists do) as a list of entries."""
    if value.strip().startswith("["):
        return [str(entry).strip() for entry in json.loads(value) if str(entry).strip()]
    return [part.strip() for part in value.split(",") if part.strip()]


@dataclass(frozen=True)
class ApiKey:
    owner: str
    digest: bytes  # sha256 of the key: compared in constant time, never the key itself


def parse_api_keys(raw: str) -> list[ApiKey]:
    keys = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        name, sep, key = entry.partition(":")
        if not sep:
            name, key = "key-" + hashlib.sha256(entry.encode()).hexdigest()[:12], entry
        if not name or len(key) < 8:
            raise ValueError("each API_KEYS entry must be name:key or key, with keys of at least 8 characters")
        keys.append(ApiKey(owner=name, digest=hashlib.sha256(key.encode()).digest()))
    return keys


STANDARD_WEBHOOK_SECRET_PREFIX = "whsec_"


class WebhookSecretError(ValueError):
    pass


def webhook_signing_key(secret: str) -> bytes:
    """The HMAC key WEBHOOK_SECRET stands for (Standard Webhooks): `whsec_<base64>` is the decoded bytes;
    any other string (MediaFlow's older plain secrets) its UTF-8 bytes. Here, not in webhooks/, so a
    malformed secret fails when the settings load."""
    if not secret.startswith(STANDARD_WEBHOOK_SECRET_PREFIX):
        return secret.encode("utf-8")
    encoded = secret[len(STANDARD_WEBHOOK_SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise WebhookSecretError(
            "WEBHOOK_SECRET starts with 'whsec_' but the rest is not base64 of a key; generate one with "
            "python -c \"import base64, secrets; print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\" "
            "or use a plain secret without the 'whsec_' prefix"
        )
    return key
