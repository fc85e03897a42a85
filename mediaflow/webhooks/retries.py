"""The webhook retry policy: which answers count as delivered, retried or refused for good, how long to
wait before the next attempt (exponential backoff, a receiver's Retry-After), and how a failed
attempt is described on the job (`webhook_last_result`). Pure functions; dispatcher.py applies them."""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import dataclass
from enum import Enum

import httpx

MAX_BACKOFF_S = 300  # retries are never further apart than this
RETRYABLE_4XX = frozenset({408, 429})  # request timeout, too many requests: the receiver asks us to come back


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
