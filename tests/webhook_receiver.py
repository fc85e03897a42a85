"""A real webhook receiver for tests and scripts: an HTTP(S) server in a thread that records every
POST (headers, body, time) and answers from a script, a policy, or 200."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from mediaflow.webhooks.signing import standard_secret, verify_signature

SECRET = "whsec-test-7f3a"


@dataclass
class Reply:
    status: int = 200
    delay_s: float = 0  # answer this late (to hit WEBHOOK_TIMEOUT_S)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    path: str
    headers: httpx.Headers
    body: bytes
    at: float = field(default_factory=time.monotonic)
    answered: int | None = None  # the status code the receiver replied with

    @property
    def event(self) -> dict:
        return json.loads(self.body)

    def standard_ok(self, secret: str = SECRET) -> bool:
        """Verified by the `standardwebhooks` library, as a receiver would (any WEBHOOK_SECRET, whsec_ or plain)."""
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        try:
            Webhook(standard_secret(secret)).verify(self.body, dict(self.headers))
        except WebhookVerificationError:
            return False
        return True

    def signature_ok(self, secret: str = SECRET) -> bool:
        """The deprecated MediaFlow-Signature header verifies."""
        return verify_signature(
            secret,
            self.headers["MediaFlow-Timestamp"],
            self.body,
            self.headers.get("MediaFlow-Signature", ""),
            tolerance_s=300,
        )


class Receiver:
    """An HTTP server in a thread that records every POST and answers from a script (then 200)."""

    def __init__(
        self,
        *script: int | Reply,
        tls: ssl.SSLContext | None = None,
        port: int = 0,
        answer: Callable[[Received], Reply] | None = None,
    ) -> None:
        """`script`: the first answers, in order; then `answer(request)` decides, or 200."""
        self.scheme = "https" if tls else "http"
        self.script = [reply if isinstance(reply, Reply) else Reply(reply) for reply in script]
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received = Received(self.path, httpx.Headers(dict(self.headers.items())), body)
                with receiver._lock:
                    receiver.received.append(received)
                    reply = receiver.script.pop(0) if receiver.script else None
                reply = reply or (answer(received) if answer else Reply())
                received.answered = reply.status
                time.sleep(reply.delay_s)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # keep the test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def all(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def of_type(self, event_type: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.event["type"] == event_type]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()
