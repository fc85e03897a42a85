"""The HTTP routes, one module per area, each a module-level `router`. Health endpoints are open;
every other router checks the API key (when API_KEYS is set) through `authenticated_router`."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from mediaflow.api.auth import authenticated_owner


def authenticated_router() -> APIRouter:
    return APIRouter(
        dependencies=[Depends(authenticated_owner)],
        responses={401: {"description": "Missing or invalid API key (only when API_KEYS is set)"}},
    )
