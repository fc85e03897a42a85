"""The JSON body of a webhook event: the job as GET /status shows it, plus its outputs (each with its
status and files), its probed source and its template — every job has outputs, a POST /process job
its method's one (a record queued before that change has none, and goes without them)."""

from __future__ import annotations

import json
from typing import Any

from mediaflow.jobs.events import JobEvent
from mediaflow.jobs.model import format_timestamp
from mediaflow.jobs.outputs import JobDetailResponse
from mediaflow.jobs.schemas import JobStatusResponse
from mediaflow.media.sources import redacted


def event_payload(event: JobEvent, event_id: str) -> bytes:
    data = JobStatusResponse.from_job(event.job).model_dump(mode="json")
    # An upload's id stays with its owner: WEBHOOK_URL receives every key's events.
    data["source"] = redacted(data["source"])
    document: dict[str, Any] = {
        "id": event_id,
        "type": event.type.value,
        "created_at": format_timestamp(event.at),
        "data": data,
    }
    if event.job.has_outputs:
        detail = JobDetailResponse.from_job(event.job).model_dump(
            mode="json", include={"outputs", "source_media", "template"}
        )
        document["data"] |= detail
    return json.dumps(document, separators=(",", ":")).encode("utf-8")
