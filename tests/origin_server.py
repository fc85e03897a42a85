"""An HTTP origin for source-by-URL tests, on 127.0.0.1, with the faults real origins have.

Written on asyncio streams rather than http.server so each route can misbehave exactly: cut a body
short, stall, answer 503 once, change the file between two requests. It records every request (path,
headers) so tests can check what the downloader asked for (Range, If-Range, Host).

Routes (the query string is ignored, as a presigned URL's signature would be):
    /clip.mp4            the clip; ETag + Last-Modified; honours Range and If-Range
    /slow.mp4            the clip in 8 pieces, 0.4 s apart
    /redirect/<n>        302 to /redirect/<n-1> (relative), /redirect/0 serves the clip
    /to-metadata         302 to http://169.254.169.254/latest/meta-data/
    /to-name             302 to http://metadata.test/ (a name the test's resolver maps)
    /flaky.mp4           503 on the first request, then the clip
    /throttled.mp4       429 with Retry-After: 1 on the first request, then the clip
    /to-ftp              302 to ftp://127.0.0.1/clip.mp4
    /drop.mp4            the first response stops after half the body; later ones honour Range
    /changed.mp4         like /drop.mp4, but the file (and its ETag) changes after the first response
    /no-validator.mp4    like /drop.mp4, but without ETag or Last-Modified (cannot be resumed)
    /big.mp4             says Content-Length: 50 MB
    /big-unsized.mp4     no Content-Length; streams until the client gives up
    /stall.mp4           sends the headers and 1 KB, then nothing
    /login               200 text/html login page
    /login-as-video      200 video/mp4 whose body is an HTML page
    /gone.mp4            404
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass, field

CHANGED = b"\x00\x00\x00\x18ftypisom" + b"B" * 200_000  # the "new version" of /changed.mp4
LOGIN_PAGE = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Sign in</body></html>"
LAST_MODIFIED = "Wed, 02 Dec 2026 10:00:00 GMT"


@dataclass
class Request:
    path: str
    headers: dict[str, str]


@dataclass
class Origin:
    clip: bytes
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    tls: ssl.SSLContext | None = None  # serve https with this context
    _server: asyncio.AbstractServer | None = None
    _handlers: set[asyncio.Task] = field(default_factory=set)  # stopped with the server (a stalled one sleeps)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def asked(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    async def start(self) -> Origin:
        self._server = await asyncio.start_server(self._handle, self.host, 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for handler in list(self._handlers):
            handler.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
        try:
            request_line = (await reader.readline()).decode("latin-1").split()
            headers: dict[str, str] = {}
            while (line := (await reader.readline()).decode("latin-1").strip()) != "":
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            path = request_line[1].split("?", 1)[0]
            request = Request(path, headers)
            self.requests.append(request)
            await self._route(request, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if handler is not None:
                self._handlers.discard(handler)
            with contextlib.suppress(Exception):
                writer.close()

    async def _route(self, request: Request, writer: asyncio.StreamWriter) -> None:
        path, times = request.path, len(self.asked(request.path))
        if path == "/clip.mp4":
            await self._file(request, writer, self.clip, '"clip-v1"')
        elif path == "/slow.mp4":
            await _send(writer, 200, {"Content-Length": str(len(self.clip)), "Content-Type": "video/mp4"})
            piece = len(self.clip) // 8 + 1
            for start in range(0, len(self.clip), piece):
                writer.write(self.clip[start : start + piece])
                await writer.drain()
                await asyncio.sleep(0.4)
        elif path.startswith("/redirect/"):
            left = int(path.rsplit("/", 1)[1])
            if left == 0:
                await self._file(request, writer, self.clip, '"clip-v1"')
            else:
                await _send(writer, 302, {"Location": f"{left - 1}", "Content-Length": "0"})
        elif path == "/to-metadata":
            await _send(writer, 302, {"Location": "http://169.254.169.254/latest/meta-data/", "Content-Length": "0"})
        elif path == "/to-name":
            await _send(writer, 302, {"Location": "http://metadata.test/latest/", "Content-Length": "0"})
        elif path == "/flaky.mp4":
            if times == 1:
                await _send(writer, 503, {"Content-Length": "0"})
            else:
                await self._file(request, writer, self.clip, '"clip-v1"')
        elif path == "/throttled.mp4":
            if times == 1:
                await _send(writer, 429, {"Retry-After": "1", "Content-Length": "0"})
            else:
                await self._file(request, writer, self.clip, '"clip-v1"')
        elif path == "/to-ftp":
            await _send(writer, 302, {"Location": "ftp://127.0.0.1/clip.mp4", "Content-Length": "0"})
        elif path in ("/drop.mp4", "/no-validator.mp4"):
            etag = '"clip-v1"' if path == "/drop.mp4" else None
            await self._file(request, writer, self.clip, etag, cut_short=times == 1)
        elif path == "/changed.mp4":
            if times == 1:
                await self._file(request, writer, self.clip, '"clip-v1"', cut_short=True)
            else:
                await self._file(request, writer, CHANGED, '"clip-v2"')
        elif path == "/big.mp4":
            await _send(writer, 200, {"Content-Length": str(50 * 1024 * 1024), "Content-Type": "video/mp4"})
            writer.write(b"\x00" * 1024)
            await writer.drain()
        elif path == "/big-unsized.mp4":
            await _send(writer, 200, {"Content-Type": "video/mp4", "Connection": "close"})
            for _ in range(1000):  # 64 MB at most; the client stops reading long before
                writer.write(b"\x00" * 65536)
                await writer.drain()
        elif path == "/stall.mp4":
            await _send(writer, 200, {"Content-Length": str(len(self.clip)), "Content-Type": "video/mp4"})
            writer.write(self.clip[:1024])
            await writer.drain()
            await asyncio.sleep(60)
        elif path == "/login":
            await _send(
                writer, 200, {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(LOGIN_PAGE))}
            )
            writer.write(LOGIN_PAGE)
        elif path == "/login-as-video":
            await _send(writer, 200, {"Content-Type": "video/mp4", "Content-Length": str(len(LOGIN_PAGE))})
            writer.write(LOGIN_PAGE)
        else:
            await _send(writer, 404, {"Content-Length": "9"})
            writer.write(b"not found")
        await writer.drain()

    async def _file(
        self,
        request: Request,
        writer: asyncio.StreamWriter,
        data: bytes,
        etag: str | None,
        *,
        cut_short: bool = False,
    ) -> None:
        """Serve `data`, honouring `Range: bytes=N-` when If-Range (if sent) names the current version."""
        validators = {"ETag": etag, "Last-Modified": LAST_MODIFIED} if etag else {}
        wanted = request.headers.get("range", "")
        if_range = request.headers.get("if-range")
        start = 0
        if wanted.startswith("bytes=") and etag and (if_range is None or if_range in (etag, LAST_MODIFIED)):
            start = int(wanted[len("bytes=") :].split("-", 1)[0])
        headers = {"Content-Type": "video/mp4", "Accept-Ranges": "bytes", **validators}
        body = data[start:]
        headers["Content-Length"] = str(len(body))
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        await _send(writer, 206 if start else 200, headers)
        writer.write(body[: len(body) // 2] if cut_short else body)
        await writer.drain()


_REASONS = {
    200: "OK",
    206: "Partial Content",
    302: "Found",
    404: "Not Found",
    429: "Too Many Requests",
    503: "Service Unavailable",
}


async def _send(writer: asyncio.StreamWriter, status: int, headers: dict[str, str]) -> None:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items() if name != "Connection"]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()
