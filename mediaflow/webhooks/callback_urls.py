"""Callback URLs are user input and an SSRF vector: which URLs and addresses a webhook may go to.

The checks themselves are `mediaflow/ssrf.py`, shared with sources by URL; this module gives them the
webhook's words (`callback_url`, WEBHOOK_ALLOW_PRIVATE). `check_callback_url` runs at POST /process
and again before every delivery attempt; the sender then connects to exactly the addresses it returned
(sender.py), so a DNS answer that changes in between cannot redirect a delivery.
"""

from __future__ import annotations

from mediaflow.ssrf import IPAddress, UnresolvableHostError, UrlRefusedError, address_problem, check_url

# The webhook-facing names of the shared checker's errors (the dispatcher retries an unresolvable host
# and gives up on a refused one).
CallbackUrlError = UrlRefusedError

_PRIVATE_HINT = (
    "webhooks are only sent to public addresses (an operator can allow private ones with WEBHOOK_ALLOW_PRIVATE=true)"
)

__all__ = ["CallbackUrlError", "IPAddress", "UnresolvableHostError", "address_problem", "check_callback_url"]


async def check_callback_url(url: str, *, allow_private: bool, timeout: float) -> list[IPAddress]:
    """Check a user-supplied callback URL and return the addresses it may be delivered to."""
    checked = await check_url(
        url, name="callback_url", allow_private=allow_private, timeout=timeout, hint=_PRIVATE_HINT
    )
    return checked.addresses
