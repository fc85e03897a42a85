"""Bounds on what one request can make the API read and echo.

- `BodyLimitMiddleware`: a request body past MAX_REQUEST_BODY_BYTES is refused with 413, before any
  of it is read when Content-Length declares it, or as soon as the running count passes the limit
  for a chunked body. POST /upload is left to its own limit (UPLOAD_MAX_BYTES, streamed to storage).
  A body that pauses longer than API_BODY_IDLE_TIMEOUT_S between chunks (uploads included) is a
  408: a client trickling a byte a minute would otherwise hold a request open for ever.
- `validation_error_handler`: the 422 for a body that does not fit the schema shows at most a short
  preview of each offending value. FastAPI's default echoes the input in full (a 10 MB field came
  back whole) and crashes on values JSON cannot hold (NaN, a lone surrogate).
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNLIMITED_PATHS = frozenset({"/upload"})  # streamed to storage under UPLOAD_MAX_BYTES
PREVIEW_CHARS = 100


class BodyTooLargeError(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"the request body is larger than {limit} bytes (MAX_REQUEST_BODY_BYTES); "
                                     "send files with POST /upload and refer to them by their source value")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, idle_timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.idle_timeout_s = idle_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = None if scope["path"] in UNLIMITED_PATHS else self.max_bytes
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if max_bytes is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._refuse(scope, receive, send)
            return
        received, body_done = 0, False

        async def guarded_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # later calls wait for the disconnect (streaming responses): no deadline
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.idle_timeout_s)
            except TimeoutError:
                # FastAPI and our upload reader re-raise an HTTPException met while reading the body.
                raise HTTPException(408, detail=f"the request body stalled for {self.idle_timeout_s:g} s "
                                                "(API_BODY_IDLE_TIMEOUT_S)") from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            if message["type"] == "http.request" and max_bytes is not None:
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLargeError(max_bytes)
            return message

        await self.app(scope, guarded_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLargeError(self.max_bytes)
        # Connection: close, so the server does not wait to read the body we refused.
        response = JSONResponse({"detail": error.detail}, status_code=413, headers={"Connection": "close"})
        await response(scope, receive, send)


def add_request_limits(app: FastAPI, max_body_bytes: int, body_idle_timeout_s: float) -> None:
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes, idle_timeout_s=body_idle_timeout_s)
    app.add_exception_handler(RequestValidationError, validation_error_handler)


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"type": str(error.get("type", "")), "loc": [_preview(part) for part in error.get("loc", ())],
         "msg": _safe_text(str(error.get("msg", "")))[:500], **({"input": _preview(error["input"])} if "input" in error else {})}
        for error in exc.errors()[:20]
    ]  # fmt: skip
    return JSONResponse({"detail": errors}, status_code=422)


def _preview(value: Any) -> Any:
    """A value fit to echo: small scalars as they are, anything else as a short text."""
    if value is None or isinstance(value, bool) or (isinstance(value, int) and abs(value) < 2**53):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)[: PREVIEW_CHARS * 4]
    text = _safe_text(text)
    if len(text) > PREVIEW_CHARS:
        whole = f"{len(value)} characters" if isinstance(value, str) else "cut"
        return f"{text[:PREVIEW_CHARS]}… ({whole})"
    return text


def _safe_text(text: str) -> str:
    """Lone surrogates (valid in a JSON string escape, not in UTF-8) written as \\udXXX escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
