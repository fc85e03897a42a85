"""Sources by http(s) URL: a public link or a presigned S3/GCS URL, downloaded by the worker to its
work directory so that ffmpeg only ever reads a local file (it never opens a network URL).

The URL is user input and a server-side request forgery vector, so every connection goes through
`mediaflow/ssrf.py`: at submission the scheme and the host's addresses are checked (422); in the worker
the host is resolved and checked again, the connection goes to the checked address (no second
lookup), and each redirect (at most MAX_REDIRECTS) is checked the same way before it is followed.

Faults an origin really has are survived: 5xx, 429, dropped connections and stalls longer than
SOURCE_URL_TIMEOUT_S are retried with backoff (STORAGE_RETRIES times), resuming with `Range` +
`If-Range` where the origin supports it, so a file that changed meanwhile is fetched afresh rather than
spliced. What retrying cannot fix (a 4xx, a file over SOURCE_URL_MAX_BYTES, an HTML page) fails the
job at once, with a message that says what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from mediaflow.logs import get_logger
from mediaflow.media.errors import SourceError
from mediaflow.settings import Settings
from mediaflow.ssrf import (
    CheckedUrl,
    Resolver,
    UnresolvableHostError,
    UrlRefusedError,
    check_literal_host,
    check_url,
    check_url_shape,
    pinned,
    resolve,
)

MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}
_BACKOFF_BASE_S = 0.5
# Bytes gathered before one write through a thread: a thread hop for every ~64 KB read halved throughput.
_WRITE_BATCH = 1024 * 1024
_MAX_BACKOFF_S = 30.0
# An HTML page where a video was expected: a login page, an expired share link, a 200 error page.
_PAGE_TYPES = ("text/html", "application/xhtml+xml")
_PAGE_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")
NOT_MEDIA = "the URL did not return a video or audio file"
_PRIVATE_HINT = (
    "sources by URL must be on public addresses (an operator can allow private networks with "
    "SOURCE_URL_ALLOW_PRIVATE=true; cloud metadata addresses are refused always)"
)

log = get_logger("sources")

# (bytes so far, total or None), as storage transfers report it.
Progress = Callable[[int, "int | None"], None]


def shown(url: httpx.URL | str) -> str:
    """A URL as errors and logs show it: without its query, which holds a presigned URL's signature."""
    try:
        return str(httpx.URL(str(url)).copy_with(query=None, fragment=None))
    except (httpx.InvalidURL, ValueError):  # not even a URL: cut at the query by hand
        return str(url).split("?", 1)[0].split("#", 1)[0]


def check_url_source_shape(raw: str, settings: Settings) -> httpx.URL:
    """What can be checked without DNS (at submission, synchronously): http(s), no credentials, and a
    host that is not a private address literal or a localhost name."""
    try:
        parsed = check_url_shape(raw, name="source")
        check_literal_host(parsed, name="source", allow_private=settings.SOURCE_URL_ALLOW_PRIVATE, hint=_PRIVATE_HINT)
    except UrlRefusedError as exc:
        raise SourceError(str(exc)) from exc
    return parsed


class UnresolvableSourceError(SourceError):
    """The source's host does not resolve now: refused at submission, worth another try in the worker."""


async def check_url_source(url: str, settings: Settings, resolver: Resolver = resolve) -> CheckedUrl:
    """Resolve the host and check every address it has (at submission, and before every connection)."""
    try:
        return await check_url(
            url,
            name="source",
            allow_private=settings.SOURCE_URL_ALLOW_PRIVATE,
            timeout=settings.SOURCE_URL_TIMEOUT_S,
            hint=_PRIVATE_HINT,
            resolver=resolver,
        )
    except UnresolvableHostError as exc:
        raise UnresolvableSourceError(str(exc)) from exc
    except UrlRefusedError as exc:
        raise SourceError(str(exc)) from exc


class _Retry(Exception):
    """This attempt failed in a way another attempt may not (5xx, 429, a dropped or stalled transfer)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass
class _Partial:
    """What is on disk so far, and what identifies the file it came from (to resume only that file)."""

    dest: Path
    size: int = 0
    total: int | None = None
    validator: str | None = None  # a strong ETag, or Last-Modified: sent as If-Range when resuming

    def restart(self) -> None:
        self.dest.write_bytes(b"")
        self.size, self.total, self.validator = 0, None, None


async def download_url_source(
    url: str,
    dest: Path,
    settings: Settings,
    progress: Progress | None = None,
    *,
    resolver: Resolver = resolve,
    verify: ssl.SSLContext | bool = True,
) -> None:
    """Download `url` to `dest`, streamed, checked and retried as the module says. SourceError with a
    message for the user when it cannot be had. (`resolver` and `verify`: the system's, unless a test
    brings its own names and certificate authority.)"""
    client = httpx.AsyncClient(
        verify=verify,
        follow_redirects=False,  # each hop is checked before it is followed (_open)
        trust_env=False,  # no HTTP(S)_PROXY: a proxy would connect to the host itself, unchecked
        timeout=httpx.Timeout(settings.SOURCE_URL_TIMEOUT_S),  # connect, and each read: a stall
        # No kept-alive connections: an HTTPS connection checked for one host name must not be reused
        # for another name on the same address (a redirect).
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    partial = _Partial(dest)
    partial.restart()
    attempts = settings.STORAGE_RETRIES + 1
    try:
        async with client:
            for attempt in range(1, attempts + 1):
                try:
                    await _attempt(client, url, partial, settings, progress, resolver)
                    return
                except _Retry as retry:
                    if attempt == attempts:
                        raise SourceError(
                            f"could not download the source {shown(url)}: {retry} (tried {attempts} times); "
                            "try again later, or check that the server is up"
                        ) from retry
                    delay = min(retry.retry_after or _BACKOFF_BASE_S * 2 ** (attempt - 1), _MAX_BACKOFF_S)
                    log.info("source.retry", url=shown(url), attempt=attempt, reason=str(retry), resume_at=partial.size)
                    await asyncio.sleep(delay)
    except BaseException:
        dest.unlink(missing_ok=True)  # never leave a partial copy that looks complete
        raise


async def _attempt(
    client: httpx.AsyncClient,
    url: str,
    partial: _Partial,
    settings: Settings,
    progress: Progress | None,
    resolver: Resolver,
) -> None:
    headers = {"Accept-Encoding": "identity"}  # sizes and ranges count the file's own bytes
    if partial.size and partial.validator:
        headers |= {"Range": f"bytes={partial.size}-", "If-Range": partial.validator}
    elif partial.size:
        partial.restart()  # nothing identifies the file: resuming could splice two versions
    try:
        response = await _open(client, url, headers, settings, resolver)
    except httpx.ConnectError as exc:
        if (reason := _certificate_problem(exc)) is not None:  # a retry meets the same certificate
            raise SourceError(
                f"the source's server {httpx.URL(url).host!r} did not prove it is that host ({reason}); "
                "check the URL's host name"
            ) from exc
        raise _Retry(_transport_problem(exc, settings)) from exc
    except httpx.TransportError as exc:
        raise _Retry(_transport_problem(exc, settings)) from exc
    except UnresolvableSourceError as exc:  # DNS trouble now need not be DNS trouble in a second
        raise _Retry(str(exc)) from exc
    try:
        _check_status(response)
        if not _resumes(response, partial):
            partial.restart()
            _start(response, partial, settings)
        await _receive(response, partial, settings, progress)
    except httpx.TransportError as exc:  # dropped or stalled mid-body: the next attempt resumes
        raise _Retry(_transport_problem(exc, settings)) from exc
    finally:
        await response.aclose()


async def _open(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], settings: Settings, resolver: Resolver
) -> httpx.Response:
    """GET `url`, following at most MAX_REDIRECTS redirects, each hop checked and connected to its
    checked address."""
    target = url
    for _ in range(MAX_REDIRECTS + 1):
        checked = await check_url_source(target, settings, resolver)
        response = await _send_pinned(client, checked, headers)
        location = response.headers.get("Location")
        if response.status_code not in _REDIRECTS or not location:
            return response
        await response.aclose()
        try:
            target = str(checked.url.join(location))  # relative to the URL as the user named it, not the address
        except httpx.InvalidURL as exc:
            raise SourceError(f"the source URL redirected to an invalid URL ({exc})") from exc
    raise SourceError(f"the source URL redirected more than {MAX_REDIRECTS} times; give the file's final URL")


async def _send_pinned(client: httpx.AsyncClient, checked: CheckedUrl, headers: dict[str, str]) -> httpx.Response:
    """Send to the checked addresses in the resolver's order (the next one if a connection fails)."""
    last_error: httpx.TransportError | None = None
    for ip in checked.addresses:
        pinned_url, host_header, extensions = pinned(checked.url, ip)
        request = client.build_request("GET", pinned_url, headers=headers | host_header, extensions=extensions)
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectError as exc:
            last_error = exc
    raise last_error or httpx.ConnectError("no address to connect to")


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if status == 429 or status >= 500:
        raise _Retry(f"the server answered {status} {response.reason_phrase}", _retry_after(response))
    if status in _REDIRECTS:
        raise SourceError(f"the source URL answered {status} {response.reason_phrase} without a Location to follow")
    if status >= 400 or status not in (200, 206):
        raise SourceError(
            f"the source URL answered HTTP {status} {response.reason_phrase}; check that it is right and still "
            "valid (a presigned URL expires) and that it needs no login"
        )


def _retry_after(response: httpx.Response) -> float | None:
    with contextlib.suppress(ValueError):
        return max(float(response.headers.get("Retry-After", "")), 0.0)
    return None


def _resumes(response: httpx.Response, partial: _Partial) -> bool:
    """Whether this response continues the bytes on disk: a 206 starting where they end, of the same
    file (an origin ignoring If-Range answers 206 for a changed file, so the validator is compared too)."""
    if response.status_code != 206 or not partial.size:
        return False
    first, _, total = _content_range(response.headers.get("Content-Range"))
    validator = _validator(response)
    return first == partial.size and total == partial.total and validator == partial.validator


def _content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """(first, last, total) of `bytes first-last/total`; None for what is absent or unknown ("*")."""
    try:
        unit, _, spec = (value or "").partition(" ")
        span, _, total = spec.partition("/")
        first, _, last = span.partition("-")
        if unit != "bytes":
            return None, None, None
        return int(first), int(last), None if total == "*" else int(total)
    except ValueError:
        return None, None, None


def _validator(response: httpx.Response) -> str | None:
    etag = response.headers.get("ETag")
    if etag and not etag.startswith("W/"):  # a weak ETag may not be used in If-Range (RFC 9110 §13.1.5)
        return etag
    return response.headers.get("Last-Modified")


def _start(response: httpx.Response, partial: _Partial, settings: Settings) -> None:
    """A response that starts the file from byte 0: check what it says about itself."""
    content_type = response.headers.get("Content-Type", "").lower()
    if content_type.startswith(_PAGE_TYPES):
        raise SourceError(f"{NOT_MEDIA} (it returned a web page, {content_type.split(';')[0]}); check the link")
    if response.status_code == 206:
        first, _, total = _content_range(response.headers.get("Content-Range"))
        if first != 0:  # a range we did not ask for
            raise _Retry(f"the server sent bytes from {first} on where the file's start was asked for")
    else:
        total = _content_length(response)
    limit = settings.SOURCE_URL_MAX_BYTES or settings.UPLOAD_MAX_BYTES
    if total is not None and total > limit:
        raise SourceError(_too_large(total, limit))
    partial.total = total
    partial.validator = _validator(response)


def _content_length(response: httpx.Response) -> int | None:
    with contextlib.suppress(ValueError):
        return int(response.headers.get("Content-Length", ""))
    return None


def _too_large(size: int, limit: int) -> str:
    return (
        f"the source is {size} bytes or more, over this server's limit of {limit} bytes (SOURCE_URL_MAX_BYTES); "
        "send a smaller file"
    )


async def _receive(response: httpx.Response, partial: _Partial, settings: Settings, progress: Progress | None) -> None:
    limit = settings.SOURCE_URL_MAX_BYTES or settings.UPLOAD_MAX_BYTES
    pending = bytearray()
    with open(partial.dest, "ab") as out:  # noqa: ASYNC230  (opening is cheap; writes go through a thread)
        try:
            # No chunk_size: httpx would hold back bytes to fill a chunk, and lose them when the connection drops.
            async for chunk in response.aiter_raw():
                if partial.size == 0 and chunk.lstrip()[:16].lower().startswith(_PAGE_STARTS):
                    raise SourceError(f"{NOT_MEDIA} (it returned a web page); check the link")
                if partial.size + len(chunk) > limit:  # a missing or lying Content-Length
                    raise SourceError(_too_large(partial.size + len(chunk), limit))
                pending += chunk
                partial.size += len(chunk)
                if len(pending) >= _WRITE_BATCH:
                    batch, pending = pending, bytearray()
                    await asyncio.to_thread(out.write, batch)
                if progress is not None:
                    progress(partial.size, partial.total)
        finally:
            out.write(pending)  # what arrived before a drop stays: the next attempt resumes after it
    if partial.total is not None and partial.size < partial.total:  # closed early without an error
        raise _Retry(f"the connection closed after {partial.size} of {partial.total} bytes")


def _certificate_problem(exc: BaseException) -> str | None:
    """The TLS certificate check's complaint, if that is why the connection failed."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause.verify_message or str(cause)
        cause = cause.__cause__ or cause.__context__
    return None


def _transport_problem(exc: httpx.TransportError, settings: Settings) -> str:
    if isinstance(exc, httpx.TimeoutException):
        what = "connect" if isinstance(exc, httpx.ConnectTimeout) else "send any bytes"
        return f"the server did not {what} within {settings.SOURCE_URL_TIMEOUT_S:g} s (SOURCE_URL_TIMEOUT_S)"
    if isinstance(exc, httpx.ConnectError):
        return "the connection was refused or failed"
    return f"the connection dropped ({type(exc).__name__})"
