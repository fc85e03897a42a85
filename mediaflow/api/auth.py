"""Optional API keys. Off until API_KEYS is set; then every endpoint but the health ones needs a key
(`X-API-Key: <key>` or `Authorization: Bearer <key>`), and a key sees only its own jobs.

API_KEYS is a comma-separated list of `name:key` (the name becomes the jobs' owner) or bare keys (the
owner is then a fingerprint of the key).
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import HTTPException, Request

from mediaflow.settings import Settings
from mediaflow.settings_values import ApiKey


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
        raise HTTPException(
            401, detail="an API key is required: send X-API-Key: <key>", headers={"WWW-Authenticate": "Bearer"}
        )
    digest = hashlib.sha256(presented.encode()).digest()
    owner = None
    for key in keys:  # compare against every key, so timing says nothing about which matched
        if hmac.compare_digest(digest, key.digest):
            owner = key.owner
    if owner is None:
        # An API_KEYS entry is "name:key": a client handed the whole entry sends the name along.
        hint = " (from an API_KEYS entry name:key, send only the key after the colon)" if ":" in presented else ""
        raise HTTPException(401, detail=f"the API key is not valid{hint}", headers={"WWW-Authenticate": "Bearer"})
    return owner


async def authenticated_owner(request: Request) -> str | None:
    """`authenticate` as a FastAPI dependency. Async on purpose: FastAPI runs a plain `def` dependency
    in its thread pool, and a thread hop per dependency was the largest cost of a POST /process."""
    return authenticate(request)
