"""Sending one webhook attempt: resolve and check the callback URL again, connect to exactly the checked
addresses (Host, SNI and the certificate check keep the URL's host name), sign, and POST — without
reading the receiver's body. The dispatcher decides what to send and when; this module only sends."""

from __future__ import annotations

import ssl

import httpx

from mediaflow.logs import get_logger
from mediaflow.observability import tracing
from mediaflow.settings_groups import WebhookSettings
from mediaflow.ssrf import pinned
from mediaflow.webhooks.callback_urls import IPAddress, check_callback_url
from mediaflow.webhooks.signing import signature_headers

log = get_logger("webhooks")


class WebhookSender:
    def __init__(self, config: WebhookSettings, secret: str | None, verify: ssl.SSLContext | bool = True) -> None:
        self.config = config
        self._secret = secret
        self._warned_unsigned = False
        self._client = httpx.AsyncClient(
            verify=verify,
            follow_redirects=False,  # a redirect could point anywhere, past the address check
            trust_env=False,  # no HTTP(S)_PROXY: a proxy would connect to the host itself, unchecked
            timeout=httpx.Timeout(config.timeout_s),
            # No kept-alive connections: the pool is keyed by address, so an HTTPS connection opened
            # (and its certificate checked) for one host name could be reused for another host name
            # on the same address. Webhooks are few; a fresh connection each is cheap enough.
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def checked_addresses(self, url: str, address_checked: bool) -> list[IPAddress] | None:
        """Resolve and check a callback_url again right now (DNS may have changed since POST /process).
        None for a target whose address is not checked (the operator's WEBHOOK_URL)."""
        if not address_checked:
            return None
        return await check_callback_url(url, allow_private=self.config.allow_private, timeout=self.config.timeout_s)

    async def post(
        self, target_url: str, event_id: str, body: bytes, addresses: list[IPAddress] | None
    ) -> httpx.Response:
        """Send one attempt. With checked `addresses`, connect to those very addresses (in the
        resolver's order, the next one if a connection is refused) rather than letting the client
        resolve the name again: the Host header and the TLS server name (SNI, certificate check)
        stay the URL's host name."""
        url = httpx.URL(target_url)
        headers = self._headers(event_id, body)
        if addresses is None:
            return await self._send(url, headers, body, {})
        last_error: Exception | None = None
        for ip in addresses:
            pinned_url, host_header, extensions = pinned(url, ip)
            try:
                return await self._send(pinned_url, headers | host_header, body, extensions)
            except httpx.ConnectError as exc:
                last_error = exc
        raise last_error or httpx.ConnectError("no address to connect to")

    async def _send(self, url: httpx.URL, headers: dict[str, str], body: bytes, extensions: dict) -> httpx.Response:
        request = self._client.build_request("POST", url, content=body, headers=headers, extensions=extensions)
        response = await self._client.send(request, stream=True)
        await response.aclose()  # the status is all we need; never read a receiver's body into memory
        return response

    def _headers(self, event_id: str, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "MediaFlow-Webhooks/1"}
        headers.update(signature_headers(self._secret, event_id, body))
        tracing.inject(headers)  # traceparent of this attempt's span, when tracing is on
        if self._secret is None and not self._warned_unsigned:
            self._warned_unsigned = True
            log.warning("webhook.unsigned", reason="WEBHOOK_SECRET is not set: webhooks are sent unsigned")
        return headers

    async def aclose(self) -> None:
        await self._client.aclose()
