"""One middleware for what every HTTP request leaves behind: its request id, its log line and its metrics.

Every request gets an id: the client's `X-Request-ID` if it is a sane token, else a new one. It is
bound to the request's log lines (structlog contextvars, so every line written while handling the
request carries `request_id`, and `job_id` once a route has looked up or created a job), returned in
the `X-Request-ID` response header; the request ends with one `http.request` line and one count and
duration in the HTTP metrics, both labelled with the route template, never the raw path.

Pure ASGI on purpose: BaseHTTPMiddleware would sit between the app and the client and break
streaming responses (downloads, SSE).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from starlette.datastructures import MutableHeaders

from mediaflow.logs import get_logger
from mediaflow.observability.metrics import HttpMetrics, method_label, route_template

log = get_logger("http")

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is kept only if it cannot garble a log line or a header: short, plain characters.
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def request_id_for(scope: dict[str, Any]) -> str:
    """The client's X-Request-ID if valid, else a fresh uuid4 hex."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"x-request-id":
            candidate = value.decode("latin-1")
            if VALID_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


@contextmanager
def request_log_context(request_id: str) -> Iterator[None]:
    """Bind `request_id` for the request; afterwards restore the caller's log context exactly.

    Restoring everything (not only request_id) also drops what the route bound (job_id): an
    in-process ASGI client runs the request in its caller's own context, where it must not linger.
    """
    outer = structlog.contextvars.get_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        yield
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**outer)


class HttpObservabilityMiddleware:
    def __init__(self, app, http_metrics: HttpMetrics | None = None) -> None:
        self.app = app
        self.http_metrics = http_metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(scope)
        started = time.perf_counter()
        status = 500  # an exception escaping the app becomes a 500 from the server error handler

        async def send_with_request_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        with request_log_context(request_id):
            try:
                await self.app(scope, receive, send_with_request_id)
            finally:
                seconds = time.perf_counter() - started
                route = route_template(scope)
                if self.http_metrics is not None:
                    self.http_metrics.record(method_label(scope), route, status, seconds)
                log.info(
                    "http.request",
                    method=scope["method"],
                    route=route,
                    status=status,
                    duration_ms=round(seconds * 1000, 1),
                )
