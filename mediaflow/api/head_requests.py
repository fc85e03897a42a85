"""HEAD for every GET endpoint (FastAPI routes answer only the methods they list, so `curl -I` on a
download got 405). A HEAD request runs as a GET; its status and headers (Content-Length,
Content-Type, Content-Disposition, Accept-Ranges) go out as they are, and the handler is stopped as
soon as they are sent, so a HEAD on a large output never reads the file from storage.
"""

from __future__ import annotations


class _HeadersSent(Exception):
    """Raised from `send` once the headers are out, to stop the GET handler before it sends a body."""


class HeadAsGet:
    """Pure ASGI middleware; add it before the request-id and metrics middleware so they see HEAD."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message) -> None:
            if message["type"] != "http.response.start":
                return  # a body message before the start cannot happen; nothing else reaches here
            await send(message)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            raise _HeadersSent

        try:
            await self.app(dict(scope, method="GET"), receive, send_headers_only)
        except* _HeadersSent:
            pass  # the answer is complete; a streaming body may be wrapped in an exception group
