"""The HTTP side of the `mediaflow` client commands: one MediaFlow server (`Api`), and every failure
turned into a `CliError` with a message for the user and an exit code.

Only httpx and the standard library are imported (never the server's modules), so the client starts
quickly and works on a machine that has none of the server's dependencies. Everything the server
sends is treated as untrusted: error details are stripped of terminal control characters.

Exit codes (see cli.py): 0 success, 1 the job failed or was canceled, 2 usage or input error (4xx),
3 the server could not be reached or answered with an unexpected error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin

import httpx

from mediaflow.client.terminal import printable

EXIT_OK, EXIT_JOB_FAILED, EXIT_USAGE, EXIT_SERVER = 0, 1, 2, 3

# Connecting is quick or not happening at all; answers can take longer (an upload is stored before
# the server answers; an event stream is quiet between changes apart from keep-alive comments).
DEFAULT_TIMEOUT = httpx.Timeout(30, connect=5)
UPLOAD_TIMEOUT = httpx.Timeout(300, connect=5)
EVENTS_TIMEOUT = httpx.Timeout(60, connect=5)


class MediaFlowError(Exception):
    """A failure talking to MediaFlow, as one message for a person; `http_status` when the server
    answered with an error, and the CLI's exit code that goes with it."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.http_status = http_status


CliError = MediaFlowError  # the name the command-line code uses


class JobFailedError(MediaFlowError):
    """The job ended failed or canceled; `job` is its final state (the server's JSON)."""

    def __init__(self, message: str, job: dict) -> None:
        super().__init__(message, EXIT_JOB_FAILED)
        self.job = job


def normalize_server_url(raw: str) -> str:
    """`host:port` becomes `http://host:port`; anything but http(s) is a usage error."""
    url = raw.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    if not url.startswith(("http://", "https://")):
        raise CliError(f"--server must be an http:// or https:// URL, not {raw!r}")
    return url


def response_detail(response: httpx.Response) -> str:
    """The error message of a response: FastAPI's `detail` (a string, or a list of validation
    errors), else the start of the body, else the reason phrase."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):
        detail = "; ".join(_describe_validation_error(item) for item in detail)
    if not isinstance(detail, str) or not detail:
        detail = response.text[:300].strip() or response.reason_phrase
    return printable(detail)


# Validation errors name the request field; the user knows the option.
_OPTION_FOR_FIELD = {
    "method_name": "--method",
    "output_format": "--format",
    "source": "FILE|SOURCE",
    "limit": "--limit",
    "skip": "--skip",
    "status": "--status",
}


def _describe_validation_error(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    location = [str(part) for part in item.get("loc", []) if part not in ("body", "query", "path", "header")]
    field = _OPTION_FOR_FIELD.get(location[-1], location[-1]) if location else ""
    if len(location) > 1 and isinstance(item.get("field"), str):  # a spec's nested field: "outputs[0].video.height"
        field = item["field"]
    message = str(item.get("msg", "invalid value"))
    return f"{field}: {message}" if field else message


def error_for_response(response: httpx.Response, server: str) -> CliError:
    detail = response_detail(response)
    status = response.status_code
    if status == 401:
        return CliError(
            f"{detail} — pass a key with --api-key KEY or set MEDIAFLOW_API_KEY", EXIT_USAGE, http_status=status
        )
    if 400 <= status < 500:
        return CliError(detail, EXIT_USAGE, http_status=status)
    return CliError(
        f"the MediaFlow server at {server} answered {status} {response.reason_phrase}: {detail} "
        "(a server-side problem: try again, or check the server's log)",
        EXIT_SERVER,
        http_status=status,
    )


def error_for_transport(exc: httpx.TransportError, server: str) -> CliError:
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return CliError(f"--server {server} is not a usable URL ({exc})", EXIT_USAGE)
    if isinstance(exc, httpx.ConnectError):
        return CliError(
            f"cannot connect to the MediaFlow server at {server} ({exc}). Is it running? Start one "
            "with `mediaflow serve`, or point the client at yours with --server URL or MEDIAFLOW_URL.",
            EXIT_SERVER,
        )
    if isinstance(exc, httpx.TimeoutException):
        return CliError(
            f"the MediaFlow server at {server} did not answer in time ({type(exc).__name__}); "
            "it may be overloaded: try again, or check the server's log",
            EXIT_SERVER,
        )
    return CliError(
        f"the connection to the MediaFlow server at {server} broke ({type(exc).__name__}: {exc}); try again",
        EXIT_SERVER,
    )


def request_headers(api_key: str | None, user_agent: str) -> dict[str, str]:
    headers = {"User-Agent": user_agent}
    if api_key:
        headers["X-API-Key"] = api_key
    return headers


def json_object(response: httpx.Response, server: str, path: str) -> dict:
    """The JSON object a MediaFlow answer carries; anything else means it is not a MediaFlow server."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise CliError(
            f"{server}{path} did not answer with a JSON object: is {server} a MediaFlow server?", EXIT_SERVER
        )
    return body


class Api:
    """One MediaFlow server: its URL, the API key, and every failure turned into a CliError."""

    def __init__(self, server: str, api_key: str | None, *, user_agent: str = "mediaflow-cli") -> None:
        self.server = normalize_server_url(server)
        self.http = httpx.Client(
            base_url=self.server, headers=request_headers(api_key, user_agent), timeout=DEFAULT_TIMEOUT
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.http.close()

    @contextmanager
    def stream(
        self, method: str, path: str, *, passthrough: Iterable[int] = (), **kwargs: Any
    ) -> Iterator[httpx.Response]:
        """A streamed response; an error status raises CliError unless it is in `passthrough`.
        Transport errors while the caller reads the body become CliErrors too."""
        try:
            with self.http.stream(method, path, **kwargs) as response:
                if response.is_error and response.status_code not in passthrough:
                    response.read()
                    raise error_for_response(response, self.server)
                yield response
        except httpx.TransportError as exc:
            raise error_for_transport(exc, self.server) from None

    def json(self, method: str, path: str, **kwargs: Any) -> dict:
        with self.stream(method, path, **kwargs) as response:
            response.read()
        return json_object(response, self.server, path)

    @contextmanager
    def download(self, path: str) -> Iterator[httpx.Response]:
        """GET `path` for its body, following a redirect to presigned storage (S3_PRESIGNED_DOWNLOADS)
        without the API key: the key is for MediaFlow, never for a third party."""
        with self.stream("GET", path) as response:
            if not response.is_redirect:
                yield response
                return
            location = urljoin(str(response.url), response.headers.get("location", ""))
        try:
            with httpx.stream("GET", location, timeout=DEFAULT_TIMEOUT, follow_redirects=True) as redirected:
                if redirected.is_error:
                    redirected.read()
                    raise CliError(
                        f"the storage the server redirected to answered {redirected.status_code}: "
                        f"{response_detail(redirected)}",
                        EXIT_SERVER,
                    )
                yield redirected
        except httpx.TransportError as exc:
            raise error_for_transport(exc, location.split("?", 1)[0]) from None
