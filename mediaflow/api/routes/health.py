"""Liveness and readiness: open, no API key, for load balancers and orchestrators."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mediaflow.api.deps import QueueDep, SettingsDep, StorageDep, StoreDep

router = APIRouter()


@router.get("/", summary="Liveness check (the seed's health endpoint)")
async def root() -> dict:
    return {"status": "ok"}


@router.get("/healthz", summary="Liveness: the process is up")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: every configured backend answers")
async def readyz(store: StoreDep, queue: QueueDep, storage: StorageDep, settings: SettingsDep) -> JSONResponse:
    checks = {
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
            results[name] = f"unavailable: {exc}"
    # How the queue and storage were chosen (explicitly, or from DB_BACKEND), and what the queue
    # reports about itself (Kafka: more workers than partitions); informational, never a 503.
    details = {name.lower(): why for name, why in settings.backend_choices.items()}
    if ready:
        details |= (await queue.report()).details
    return JSONResponse({"status": "ready" if ready else "unavailable", "backends": results, "details": details},
                        status_code=200 if ready else 503)
