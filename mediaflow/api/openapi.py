"""What /openapi.json says beyond what FastAPI infers, so a client generated from it (openapi-python-client,
openapi-generator, …) works without glue: operation ids from route names (`process`, `status`,
`upload`, …), tags by area, the API key security schemes, the multipart body of POST /upload (the route
streams it by hand, so FastAPI cannot see it), and binary / event-stream responses."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPBearer
from pydantic import BaseModel


class Tag:
    JOBS = "jobs"
    UPLOADS = "uploads"
    FILES = "files"
    TEMPLATES = "templates"
    WORKERS = "workers"
    HEALTH = "health"


TAGS_METADATA = [
    {"name": Tag.JOBS, "description": "Submit jobs, follow them, act on them."},
    {"name": Tag.UPLOADS, "description": "Send a file to process; its `source` feeds a job."},
    {"name": Tag.FILES, "description": "A job's output and log."},
    {"name": Tag.TEMPLATES, "description": "Saved job settings."},
    {"name": Tag.WORKERS, "description": "The worker processes alive, on every machine."},
    {"name": Tag.HEALTH, "description": "Liveness and readiness, open without an API key."},
]


def operation_id(route: APIRoute) -> str:
    """The route function's name: `process`, `status`, `upload`… — what generated SDKs name their
    functions (FastAPI's default would be `process_process_post`)."""
    return route.name


# Declared for the documentation and generated clients; `auth.authenticate` does the checking (either
# header works, and neither is needed when API_KEYS is unset), hence auto_error=False.
API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKey",
    description="One of the server's API_KEYS (only when API_KEYS is set).",
)
BEARER = HTTPBearer(
    auto_error=False, scheme_name="Bearer", description="`Authorization: Bearer <API key>`, the same key."
)

_BINARY = {"schema": {"type": "string", "format": "binary"}}

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "The file; streamed to storage, never held in memory.",
                        }
                    },
                },
                "encoding": {"file": {"contentType": "application/octet-stream, video/*, audio/*"}},
            }
        },
    }
}

# The output's own type (video/mp4, video/webm, audio/mpeg, …); octet-stream when storage does not know it.
_OUTPUT_CONTENT = {"video/*": _BINARY, "audio/*": _BINARY, "application/octet-stream": _BINARY}
# Typed for the `responses=` of a route, which merges these with its own (keys int or str).
OUTPUT_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The output file, with a Content-Disposition file name", "content": _OUTPUT_CONTENT},
    206: {"description": "One byte range of the output (a `Range: bytes=…` request)", "content": _OUTPUT_CONTENT},
}

LOG_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"description": "The ffmpeg log, as text", "content": {"text/plain": {"schema": {"type": "string"}}}}
}

EVENT_STREAM_RESPONSE = {
    200: {
        "description": "`event: job` frames whose data is the GET /status JSON; the stream closes after the "
        "final status",
        "content": {
            "text/event-stream": {
                "schema": {
                    # One event, as SSE parsers hand it over; `data` is JobStatusResponse as JSON.
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "event": {"type": "string", "const": "job"},
                        "id": {"type": "string"},
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": {"$ref": "#/components/schemas/JobStatusResponse"},
                        },
                    },
                }
            }
        },
    },
}


def describe_union_default(field: dict) -> None:
    """An object default on a union field (`audio: StreamAudio | false = {...}`) is valid OpenAPI, but
    generators check the default against every member and give up on the whole model (openapi-python-client
    drops it). The server applies the default anyway, so say it in the description instead."""
    if "anyOf" in field and isinstance(field.get("default"), dict):
        default = json.dumps(field.pop("default"), separators=(", ", ": "))
        field["description"] = f"{field.get('description', '').rstrip()} Default: {default}.".strip()


def complete_openapi(app: FastAPI, models: ModuleType) -> None:
    """Three things FastAPI cannot do alone. It writes /openapi.json without null values (exclude_none),
    which also strips the `null` fields out of model examples (`"error": null` would vanish and the
    example would no longer validate): put each model's own examples back (models by component name,
    from the module `models`). Describe the tags in use (an unused one shows as an empty group). And
    move object defaults off union fields (`describe_union_default`)."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            document = generate()
            used = {
                tag for path in document.get("paths", {}).values() for op in path.values() for tag in op.get("tags", [])
            }
            document["tags"] = [tag for tag in TAGS_METADATA if tag["name"] in used]
            for name, component in document.get("components", {}).get("schemas", {}).items():
                model = getattr(models, name, None)
                if isinstance(model, type) and issubclass(model, BaseModel) and "examples" in component:
                    component["examples"] = model.model_json_schema()["examples"]
                for field in component.get("properties", {}).values():
                    describe_union_default(field)
            return document  # FastAPI's generate() kept it as app.openapi_schema too
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
