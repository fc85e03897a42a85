"""Bounds on what one request can make the API read.

- `BodyLimitMiddleware`: a request body past MAX_REQUEST_BODY_BYTES is refused with 413, before any
  of it is read when Content-Length declares it, or as soon as the running count passes the limit
  for a chunked body. POST /upload is left to its own limit (UPLOAD_MAX_BYTES, streamed to storage).
  A body that pauses longer than API_BODY_IDLE_TIMEOUT_S between chunks (uploads included) is a
  408: a client trickling a byte a minute would otherwise hold a request open for ever.

What a 422 echoes of a body that passed this limit is bounded by validation.py.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNLIMITED_PATHS = frozenset({"/upload"})  # streamed to storage under UPLOAD_MAX_BYTES


class BodyTooLargeError(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            detail=f"the request body is larger than {limit} bytes (MAX_REQUEST_BODY_BYTES); "
            "send files with POST /upload and refer to them by their source value",
        )


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
                raise HTTPException(
                    408, detail=f"the request body stalled for {self.idle_timeout_s:g} s (API_BODY_IDLE_TIMEOUT_S)"
                ) from None
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
