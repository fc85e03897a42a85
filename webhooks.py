"""Webhooks: job events POSTed as signed JSON to the job's `callback_url` and/or the global `WEBHOOK_URL`.

A `WebhookDispatcher` listens on the process's `JobEvents` bus and delivers `job.completed`,
`job.failed`, `job.canceled` (and `job.progress` milestones for jobs submitted with
`callback_progress`). Each event becomes one delivery per target, retried with exponential backoff
for `WEBHOOK_RETRY_FOR_S`; deliveries of one job to one target go out in event order. How each
attempt went is written on the job (`webhook_attempts`, `webhook_last_result`).

Wire format (documented in README "Webhooks"):

    POST <url>
    Content-Type: application/json
    MediaFlow-Event-Id: <uuid; the same on every retry of one event>
    MediaFlow-Timestamp: <unix seconds of this attempt>
    MediaFlow-Signature: v1=<hex HMAC-SHA256(WEBHOOK_SECRET, f"{timestamp}.{body}")>   (when a secret is set)

    {"id": <event id>, "type": "job.completed", "created_at": <event time>, "data": <GET /status JSON>}

A callback URL is user input, so it is an SSRF vector: `callback_urls.py` checks it at `POST /process`
and again before every attempt, and the request is then sent to the very address that was checked
(see `WebhookDispatcher._post`), so a DNS answer that changes in between (DNS rebinding) cannot
redirect a delivery to an internal host.

Delivery is process-local and in memory: the process that saw the event delivers it. A delivery still
waiting for its next retry when its process stops is abandoned (logged, and noted on the job).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import json
import random
import ssl
import time
import uuid
from dataclasses import dataclass
from enum import Enum

import httpx

from callback_urls import CallbackUrlError, IPAddress, UnresolvableHostError, check_callback_url
from db import Expect, JobStore
from events import EventType, JobEvent
from logs import get_logger
from schema import Job, JobStatus, JobStatusResponse, format_timestamp
from settings import Settings

log = get_logger("webhooks")

SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300  # how old a timestamp a receiver should accept (replay window)
MAX_BACKOFF_S = 300  # retries are never further apart than this
FINAL_EVENTS = frozenset({EventType.COMPLETED, EventType.FAILED, EventType.CANCELED})
# Delivery results are written only on jobs in these statuses (see WebhookDispatcher._record).
RECORDABLE_STATUSES = frozenset(JobStatus) - {JobStatus.QUEUED}
RETRYABLE_4XX = frozenset({408, 429})  # request timeout, too many requests: the receiver asks us to come back


# --- signing ---------------------------------------------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The MediaFlow-Signature header value for one attempt."""
    message = timestamp.encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature_header: str,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """Receiver side: True if `body` was signed with `secret` at `timestamp`, no longer than
    `tolerance_s` ago (a captured request cannot be replayed later). The header may carry several
    comma-separated signatures (`v1=…,v1=…`); one match is enough. Same code as in README."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body)
    candidates = [part.strip() for part in signature_header.split(",")]
    # compare_digest takes the same time wherever the strings differ: no guessing byte by byte.
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


# --- delivery --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    url: str
    label: str  # shown in webhook_last_result when it is the global WEBHOOK_URL
    address_checked: bool  # a user's callback_url (checked, pinned); False for the operator's WEBHOOK_URL


@dataclass
class Delivery:
    """One event on its way to one target, across its attempts."""

    event_id: str
    event_type: EventType
    job_id: str
    target: Target
    body: bytes
    retry_until: float  # time.monotonic() deadline for starting another attempt
    attempt: int = 0
    last_result: str = "not attempted yet"

    @property
    def lane(self) -> tuple[str, str]:
        return self.job_id, self.target.url


class Verdict(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GIVE_UP = "give up"


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    description: str  # "200 OK", "connection refused", ...
    retry_after_s: float | None = None  # the receiver's Retry-After, when it sent one


def outcome_of_status(status_code: int, reason_phrase: str, retry_after: str | None = None) -> Outcome:
    """2xx delivered; 408/429 and 5xx retried (no sooner than a Retry-After asks); other 4xx and 3xx
    (never followed) given up."""
    description = f"{status_code} {reason_phrase}".strip()
    if 200 <= status_code < 300:
        return Outcome(Verdict.DELIVERED, description)
    if status_code in RETRYABLE_4XX or status_code >= 500:
        return Outcome(Verdict.RETRY, description, parse_retry_after(retry_after))
    if 300 <= status_code < 400:
        return Outcome(Verdict.GIVE_UP, f"{description} (redirects are not followed; use the final URL)")
    return Outcome(Verdict.GIVE_UP, f"{description} (the receiver refused it)")


def describe_transport_error(exc: Exception, timeout: float) -> str:
    if isinstance(exc, (httpx.TimeoutException, asyncio.TimeoutError)):
        return f"no response within {timeout:g} s (WEBHOOK_TIMEOUT_S)"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        return "connection refused" if "refused" in text else f"could not connect ({exc or type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` header asks to wait: delay-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(when.timestamp() - (now if now is not None else time.time()), 0.0)


def backoff_delay(attempt: int, base_s: float) -> float:
    """Wait before attempt `attempt + 1`: base, 2×base, 4×base, … capped at MAX_BACKOFF_S."""
    return min(base_s * 2 ** (attempt - 1), MAX_BACKOFF_S)


def event_payload(event: JobEvent, event_id: str) -> bytes:
    document = {
        "id": event_id,
        "type": event.type.value,
        "created_at": format_timestamp(event.at),
        "data": JobStatusResponse.from_job(event.job).model_dump(mode="json"),
    }
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


class WebhookDispatcher:
    """Delivers one process's job events to webhooks. `events.subscribe(dispatcher.on_event)`;
    `await dispatcher.aclose()` on shutdown, before the store closes."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        *,
        backoff_base_s: float | None = None,
        verify: ssl.SSLContext | bool = True,  # certificate checks; a context trusting a private CA, in tests
    ) -> None:
        self.settings = settings
        self.store = store
        self.backoff_base_s = backoff_base_s if backoff_base_s is not None else settings.WEBHOOK_BACKOFF_BASE_S
        self._secret = settings.WEBHOOK_SECRET.get_secret_value() if settings.WEBHOOK_SECRET else None
        self._client = httpx.AsyncClient(
            verify=verify,
            follow_redirects=False,  # a redirect could point anywhere, past the address check
            trust_env=False,  # no HTTP(S)_PROXY: a proxy would connect to the host itself, unchecked
            timeout=httpx.Timeout(settings.WEBHOOK_TIMEOUT_S),
            # No kept-alive connections: the pool is keyed by address, so an HTTPS connection opened
            # (and its certificate checked) for one host name could be reused for another host name
            # on the same address. Webhooks are few; a fresh connection each is cheap enough.
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self._tasks: dict[asyncio.Task, Delivery] = {}
        self._lanes: dict[tuple[str, str], asyncio.Task] = {}  # the newest delivery per (job, target)
        self._closing = False
        self._warned_unsigned = False
        if settings.WEBHOOK_URL and self._secret is None:
            log.warning("webhook.unsigned", reason="WEBHOOK_URL is set but WEBHOOK_SECRET is not: deliveries "
                        "are unsigned and receivers cannot verify they come from MediaFlow; set WEBHOOK_SECRET")

    # --- from the event bus ------------------------------------------------------------------------

    def on_event(self, event: JobEvent) -> None:
        """The bus listener: returns at once; the deliveries run as tasks."""
        if not self._wanted(event):
            return
        targets = self._targets(event.job)
        if not targets:
            return
        if self._closing:
            log.warning("webhook.not_sent", job_id=event.job.job_id, event_type=event.type.value, reason="shutting down")
            return
        event_id = str(uuid.uuid4())
        body = event_payload(event, event_id)
        retry_until = time.monotonic() + self.settings.WEBHOOK_RETRY_FOR_S
        for target in targets:
            self._schedule(Delivery(event_id, event.type, event.job.job_id, target, body, retry_until))

    @staticmethod
    def _wanted(event: JobEvent) -> bool:
        return event.type in FINAL_EVENTS or (event.type is EventType.PROGRESS and event.job.callback_progress)

    def _targets(self, job: Job) -> list[Target]:
        targets = []
        if job.callback_url:
            targets.append(Target(job.callback_url, "callback_url", address_checked=True))
        if self.settings.WEBHOOK_URL and self.settings.WEBHOOK_URL != job.callback_url:
            targets.append(Target(self.settings.WEBHOOK_URL, "WEBHOOK_URL", address_checked=False))
        return targets

    def _schedule(self, delivery: Delivery) -> None:
        # Deliveries of one job to one target run one after another, in event order: a receiver sees
        # job.progress before job.completed. Different jobs and targets do not wait for each other.
        previous = self._lanes.get(delivery.lane)
        task = asyncio.get_running_loop().create_task(self._run(delivery, previous))
        self._lanes[delivery.lane] = task
        self._tasks[task] = delivery
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task) -> None:
        delivery = self._tasks.pop(task, None)
        if delivery is not None and self._lanes.get(delivery.lane) is task:
            del self._lanes[delivery.lane]

    # --- one delivery ------------------------------------------------------------------------------

    async def _run(self, delivery: Delivery, previous: asyncio.Task | None) -> None:
        if previous is not None:
            await asyncio.wait({previous})  # its outcome is its own business; only the order matters
        try:
            await self._deliver(delivery)
        except Exception:  # a bug here must not surface as "Task exception was never retrieved"
            log.exception("webhook.error", job_id=delivery.job_id, event_type=delivery.event_type.value)

    async def _deliver(self, delivery: Delivery) -> None:
        while True:
            delivery.attempt += 1
            outcome = await self._attempt(delivery)
            delay, result = self._next_step(delivery, outcome)
            delivery.last_result = result
            await self._record(delivery, result, count_attempt=True)
            if delay is None:
                return
            await asyncio.sleep(delay)

    def _next_step(self, delivery: Delivery, outcome: Outcome) -> tuple[float | None, str]:
        """Whether (and when) to try again, and the line that tells the job's owner what happened."""
        suffix = "" if delivery.target.label == "callback_url" else f" ({delivery.target.label})"
        result = f"{delivery.event_type.value} attempt {delivery.attempt}{suffix}: {outcome.description}"
        if outcome.verdict is not Verdict.RETRY:
            return None, result if outcome.verdict is Verdict.DELIVERED else f"{result}, not retried"
        if self._superseded(delivery):
            return None, f"{result}, not retried: a newer event for this job is waiting"
        delay = backoff_delay(delivery.attempt, self.backoff_base_s)
        if outcome.retry_after_s is not None:  # the receiver said when; never sooner, and within our cap
            delay = min(max(delay, outcome.retry_after_s), MAX_BACKOFF_S)
        # A little jitter, so receivers that failed for many jobs at once are not retried in lockstep.
        delay = round(delay * random.uniform(1.0, 1.1), 2)
        if time.monotonic() + delay > delivery.retry_until:
            retry_for = self.settings.WEBHOOK_RETRY_FOR_S
            return None, f"{result}, gave up after {delivery.attempt} attempts (WEBHOOK_RETRY_FOR_S={retry_for:g} s)"
        return delay, f"{result}, retrying in {delay:g} s"

    def _superseded(self, delivery: Delivery) -> bool:
        # A progress milestone is stale once a later event of the same job waits behind it; retrying
        # it would only hold up the newer (and final) event.
        current = asyncio.current_task()
        return delivery.event_type is EventType.PROGRESS and self._lanes.get(delivery.lane) is not current

    async def _attempt(self, delivery: Delivery) -> Outcome:
        timeout = self.settings.WEBHOOK_TIMEOUT_S
        try:
            addresses = await self._checked_addresses(delivery.target)
            async with asyncio.timeout(timeout):  # the whole attempt, not only each read (slow drip)
                response = await self._post(delivery, addresses)
        except UnresolvableHostError as exc:
            return Outcome(Verdict.RETRY, str(exc))
        except CallbackUrlError as exc:  # now resolves to a private address: refused for good
            return Outcome(Verdict.GIVE_UP, f"refused: {exc}")
        except (httpx.HTTPError, OSError, asyncio.TimeoutError) as exc:
            return Outcome(Verdict.RETRY, describe_transport_error(exc, timeout))
        return outcome_of_status(response.status_code, response.reason_phrase, response.headers.get("retry-after"))

    async def _checked_addresses(self, target: Target) -> list[IPAddress] | None:
        """Resolve and check a callback_url again right now (DNS may have changed since POST /process)."""
        if not target.address_checked:
            return None
        return await check_callback_url(
            target.url, allow_private=self.settings.WEBHOOK_ALLOW_PRIVATE, timeout=self.settings.WEBHOOK_TIMEOUT_S
        )

    async def _post(self, delivery: Delivery, addresses: list[IPAddress] | None) -> httpx.Response:
        """Send one attempt. With checked `addresses`, connect to those very addresses (in the
        resolver's order, the next one if a connection is refused) rather than letting the client
        resolve the name again: the Host header and the TLS server name (SNI, certificate check)
        stay the URL's host name."""
        url = httpx.URL(delivery.target.url)
        headers = self._headers(delivery)
        if addresses is None:
            return await self._send(url, headers, delivery.body, {})
        headers["Host"] = url.netloc.decode("ascii")
        extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
        last_error: Exception | None = None
        for ip in addresses:
            try:
                return await self._send(url.copy_with(host=str(ip)), headers, delivery.body, extensions)
            except httpx.ConnectError as exc:
                last_error = exc
        raise last_error or httpx.ConnectError("no address to connect to")

    async def _send(self, url: httpx.URL, headers: dict[str, str], body: bytes, extensions: dict) -> httpx.Response:
        request = self._client.build_request("POST", url, content=body, headers=headers, extensions=extensions)
        response = await self._client.send(request, stream=True)
        await response.aclose()  # the status is all we need; never read a receiver's body into memory
        return response

    def _headers(self, delivery: Delivery) -> dict[str, str]:
        timestamp = str(int(time.time()))  # per attempt: a retry an hour later is still within tolerance
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "MediaFlow-Webhooks/1",
            "MediaFlow-Event-Id": delivery.event_id,
            "MediaFlow-Timestamp": timestamp,
        }
        if self._secret is not None:
            headers["MediaFlow-Signature"] = sign(self._secret, timestamp, delivery.body)
        elif not self._warned_unsigned:
            self._warned_unsigned = True
            log.warning("webhook.unsigned", reason="WEBHOOK_SECRET is not set: webhooks are sent unsigned")
        return headers

    # --- bookkeeping on the job --------------------------------------------------------------------

    async def _record(self, delivery: Delivery, result: str, *, count_attempt: bool) -> None:
        """Write the outcome on the job: webhook_last_result, and webhook_attempts + 1.

        Conditional on the version read, so two deliveries for one job (possibly in two processes)
        cannot lose an increment; and never on a queued job: a failed job retried meanwhile is
        claimed by a conditional update on the version a worker just read, which our write would
        bump and make the claim miss. The delivery itself goes on either way."""
        log.info("webhook.attempt", job_id=delivery.job_id, event_type=delivery.event_type.value, result=result)
        try:
            for _ in range(5):  # lost a race with a progress write or another delivery: read again
                job = await self.store.get(delivery.job_id)
                if job is None or job.status not in RECORDABLE_STATUSES:
                    return
                changes = {"webhook_last_result": result[:1000]}
                if count_attempt:
                    changes["webhook_attempts"] = job.webhook_attempts + 1
                expect = Expect(status=RECORDABLE_STATUSES, version=job.version)
                if await self.store.update(delivery.job_id, changes, expect):
                    return
            log.warning("webhook.not_recorded", job_id=delivery.job_id, reason="the job kept changing")
        except Exception as exc:  # the store being down must not stop deliveries
            log.warning("webhook.not_recorded", job_id=delivery.job_id, error=str(exc))

    # --- shutdown ----------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Give deliveries in flight WEBHOOK_SHUTDOWN_GRACE_S to finish, abandon (and log) the rest."""
        self._closing = True
        pending = set(self._tasks)
        if pending:
            grace = self.settings.WEBHOOK_SHUTDOWN_GRACE_S
            log.info("webhook.draining", deliveries=len(pending), grace_s=grace)
            unfinished = pending
            if grace > 0:
                _, unfinished = await asyncio.wait(pending, timeout=grace)
            abandoned = [self._tasks[task] for task in unfinished if task in self._tasks]
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
            for delivery in abandoned:
                await self._note_abandoned(delivery)
        await self._client.aclose()

    async def _note_abandoned(self, delivery: Delivery) -> None:
        log.warning("webhook.abandoned", job_id=delivery.job_id, event_type=delivery.event_type.value,
                    event_id=delivery.event_id, target=delivery.target.label, attempts=delivery.attempt,
                    last_result=delivery.last_result)
        note = f"{delivery.last_result}; abandoned: the process delivering it shut down"
        if delivery.attempt == 0:
            note = f"{delivery.event_type.value} not sent: the process delivering it shut down"
        try:
            await asyncio.wait_for(self._record(delivery, note, count_attempt=False), timeout=2)
        except asyncio.TimeoutError:
            pass
