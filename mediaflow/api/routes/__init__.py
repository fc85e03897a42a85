"""The HTTP routes, one module per area, each a module-level `router`. Health endpoints are open;
every other router checks the API key (when API_KEYS is set) through `authenticated_router`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Security

from mediaflow.api.auth import authenticated_owner
from mediaflow.api.openapi import API_KEY_HEADER, BEARER

# The security schemes as /openapi.json declares them (either header); they check nothing themselves.
DECLARED_SECURITY = [Security(API_KEY_HEADER), Security(BEARER)]


def authenticated_router(tag: str | None = None) -> APIRouter:
    """A router for one area: `tag` (an `openapi.Tag`) groups its operations in the OpenAPI document and
    in generated SDKs (tests/test_openapi_client.py wants one on every operation)."""
    return APIRouter(
        tags=[tag] if tag else [],
        dependencies=[*DECLARED_SECURITY, Depends(authenticated_owner)],
        responses={401: {"description": "Missing or invalid API key (only when API_KEYS is set)"}},
    )
