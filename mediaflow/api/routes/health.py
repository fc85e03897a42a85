"""Liveness and readiness: open, no API key, for load balancers and orchestrators.

/readyz says which backend is down to anyone, but why (an error naming the internal S3 endpoint, the
MongoDB host, a file path) only to a caller with a valid API key, or to everyone when the API is open
(no API_KEYS). The reason always goes to the server log."""

from __future__ import annotations

import asyncio
from typing import Protocol

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from mediaflow.api.auth import authenticate
from mediaflow.api.deps import QueueDep, SettingsDep, StorageDep, StoreDep
from mediaflow.api.openapi import Tag
from mediaflow.logs import get_logger

log = get_logger("api")


class _Pingable(Protocol):
    """What /readyz needs of a store, a queue and a storage alike."""

    async def ping(self) -> None: ...


router = APIRouter(tags=[Tag.HEALTH])


def _may_see_reasons(request: Request) -> bool:
    try:
        authenticate(request)  # None with API keys off; 401 for a missing or wrong key
    except HTTPException:
        return False
    return True


@router.get("/healthz", summary="Liveness: the process is up")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: every configured backend answers")
async def readyz(
    request: Request, store: StoreDep, queue: QueueDep, storage: StorageDep, settings: SettingsDep
) -> JSONResponse:
    checks: dict[str, _Pingable] = {
        f"store:{settings.DB_BACKEND}": store,
        f"queue:{settings.QUEUE_BACKEND}": queue,
        f"storage:{settings.STORAGE_BACKEND}": storage,
    }
    results, ready = {}, True
    for name, backend in checks.items():
        try:
            await asyncio.wait_for(backend.ping(), timeout=5)
            results[name] = "ok"
        except Exception as exc:
            ready = False
            log.warning("readyz.backend_unavailable", backend=name, error=str(exc) or type(exc).__name__)
            results[name] = f"unavailable: {exc}" if _may_see_reasons(request) else "unavailable"
    # How the queue and storage were chosen (explicitly, or from DB_BACKEND), and what the queue
    # reports about itself (Kafka: more workers than partitions); informational, never a 503.
    details = {name.lower(): why for name, why in settings.backend_choices.items()}
    if ready:
        details |= (await queue.report()).details
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "backends": results, "details": details},
        status_code=200 if ready else 503,
    )
