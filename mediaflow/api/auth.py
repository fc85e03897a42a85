"""Optional API keys. Off until API_KEYS is set; then every endpoint but the health ones needs a key
(`X-API-Key: <key>` or `Authorization: Bearer <key>`), and a key sees only its own jobs.

API_KEYS is a comma-separated list of `name:key` (the name becomes the jobs' owner) or bare keys (the
owner is then a fingerprint of the key).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fastapi import HTTPException, Request

from mediaflow.settings import Settings


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


def presented_key(request: Request) -> str | None:
    if key := request.headers.get("x-api-key"):
        return key
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authenticate(request: Request) -> str | None:
    """The owner the request acts for; None when API keys are off. 401 for a missing or wrong key."""
    settings: Settings = request.app.state.settings
    keys: list[ApiKey] = settings.api_keys
    if not keys:
        return None
    presented = presented_key(request)
    if presented is None:
        raise HTTPException(401, detail="an API key is required: send X-API-Key: <key>",
                            headers={"WWW-Authenticate": "Bearer"})
    digest = hashlib.sha256(presented.encode()).digest()
    owner = None
    for key in keys:  # compare against every key, so timing says nothing about which matched
        if hmac.compare_digest(digest, key.digest):
            owner = key.owner
    if owner is None:
        raise HTTPException(401, detail="the API key is not valid", headers={"WWW-Authenticate": "Bearer"})
    return owner
