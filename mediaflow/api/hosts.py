"""Which Host names the API answers to (ALLOWED_HOSTS), and which browser origins may change state.

DNS rebinding: a web page on evil.example makes its own name resolve to 127.0.0.1, and the victim's
browser then sends the page's requests to a MediaFlow on the victim's machine, with `Host:
evil.example` — same origin as far as the browser knows, so it may read the answers. Refusing any
Host that is not one of ours stops that. The address the connection came in on (`scope["server"]`:
the bound address, or the machine's own address when bound to 0.0.0.0 — what orchestrator probes and
direct IP access use) is always ours; so are the loopback names unless ALLOWED_HOSTS lists the names
instead (a deployment reached under a domain name; `*` turns the check off, e.g. behind a proxy that
checks Host itself).

Cross-site requests: a page on another site can make the browser POST a multipart form (POST /upload)
or a `text/plain` body without asking first (no CORS preflight for "simple" requests); the answer is
hidden from it, but the side effect happens. So a state-changing request (POST, PUT, PATCH, DELETE)
that carries an `Origin` header must come from this server's own origin (the dashboard) or one listed
in ALLOWED_ORIGINS. Requests without `Origin` (curl, the CLI, other services) are not browsers' and pass.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.responses import JSONResponse

from mediaflow.logs import get_logger
from mediaflow.settings_groups import AccessSettings

log = get_logger("api")

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def host_name(host_header: str) -> str:
    """The name or address in a Host header, without port or IPv6 brackets, lower case."""
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:8000
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def host_allowed(access: AccessSettings, host_header: str | None, server_address: str | None) -> bool:
    if host_header is None:  # HTTP/1.0 without Host: no browser sends that
        return True
    name = host_name(host_header)
    if server_address is not None and name == server_address.lower():
        return True  # the address the connection came in on: an address, not a name anyone can rebind
    entries = access.allowed_hosts
    if entries is None:
        return name in LOOPBACK_NAMES
    for entry in entries:
        if entry == "*" or name == entry or (entry.startswith(".") and (name.endswith(entry) or name == entry[1:])):
            return True
    return False


def origin_allowed(access: AccessSettings, origin: str, host_header: str | None) -> bool:
    """Same origin as the request's Host, or listed in ALLOWED_ORIGINS. `null` (sandboxed frames,
    file:// pages) is never ours."""
    if origin.strip().lower() in (entry.lower() for entry in access.allowed_origins):
        return True
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or host_header is None:
        return False
    return parts.netloc.lower() == host_header.strip().lower()  # the scheme's default port is left out in both


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class HostAndOriginGuard:
    """Pure ASGI (like the observability middleware), so streaming responses pass untouched."""

    def __init__(self, app, access: AccessSettings) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host")
        server = scope.get("server")
        if not host_allowed(self.access, host, server[0] if server else None):
            log.warning("http.host_refused", host=host)
            await _refuse(
                scope,
                receive,
                send,
                400,
                f"this server does not answer to the host name {host!r}; if that is how "
                "clients reach it, add the name to ALLOWED_HOSTS",
            )
            return
        origin = _header(scope, b"origin")
        if scope["method"] in STATE_CHANGING and origin is not None and not origin_allowed(self.access, origin, host):
            log.warning("http.origin_refused", origin=origin, method=scope["method"], path=scope.get("path"))
            await _refuse(
                scope,
                receive,
                send,
                403,
                f"cross-origin {scope['method']} from {origin[:200]!r} refused; a web page "
                "on another site may not change anything here (ALLOWED_ORIGINS lists "
                "other sites that may)",
            )
            return
        await self.app(scope, receive, send)


async def _refuse(scope, receive, send, status: int, detail: str) -> None:
    await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
