"""GET /workers: the worker processes alive on every machine, from their presence beats in the job store
(store/workers.py, worker/presence.py).

Workers belong to the deployment, not to an API key, so every valid key sees the same answer (MediaFlow
has no admin keys). It names hosts and process ids, which /readyz's reasons already show to any key."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from mediaflow.api.deps import StoreDep
from mediaflow.api.openapi import Tag
from mediaflow.api.routes import authenticated_router
from mediaflow.jobs.model import Timestamp, utcnow
from mediaflow.store.workers import WorkerPresence

router = authenticated_router(Tag.WORKERS)

WORKER_EXAMPLE: JsonDict = {
    "worker_id": "encoder-1-4242-3f9a1c",
    "host": "encoder-1",
    "pid": 4242,
    "slots": 2,
    "busy": 1,
    "started_at": "2026-11-25T09:00:00.000000Z",
    "seen_at": "2026-11-25T09:15:00.000000Z",
    "expires_at": "2026-11-25T09:15:30.000000Z",
}


class WorkerResponse(BaseModel):
    worker_id: str = Field(description="The process's id, new at every start")
    host: str
    pid: int
    slots: int = Field(description="Jobs it runs at once (its WORKER_CONCURRENCY)")
    busy: int = Field(description="Jobs it was running at its last beat")
    started_at: Timestamp
    seen_at: Timestamp = Field(description="Its last beat")
    expires_at: Timestamp = Field(description="It drops out then unless it beats again")

    @classmethod
    def from_presence(cls, presence: WorkerPresence) -> WorkerResponse:
        return cls(
            worker_id=presence.process_id,  # the JSON keeps the name it always had
            host=presence.host,
            pid=presence.pid,
            slots=presence.slots,
            busy=presence.busy,
            started_at=presence.started_at,
            seen_at=presence.seen_at,
            expires_at=presence.expires_at,
        )


class WorkersResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"workers": [WORKER_EXAMPLE], "count": 1, "slots": 2, "busy": 1}]}
    )

    workers: list[WorkerResponse] = Field(description="Oldest started first")
    count: int = Field(description="Worker processes alive")
    slots: int = Field(description="Jobs they can run at once, summed")
    busy: int = Field(description="Jobs they were running at their last beats, summed")


@router.get("/workers", response_model=WorkersResponse, summary="Worker processes alive on every machine")
async def list_workers(store: StoreDep) -> WorkersResponse:
    live = await store.workers.live(utcnow())
    workers = [WorkerResponse.from_presence(presence) for presence in live]
    return WorkersResponse(
        workers=workers, count=len(workers), slots=sum(w.slots for w in workers), busy=sum(w.busy for w in workers)
    )
