"""Callback URLs are user input and an SSRF vector: which URLs and addresses a webhook may go to.

A callback URL must be http(s) without credentials, and every address its host resolves to must be
public (not loopback, private, link-local, multicast, reserved, or an IPv4 address smuggled inside an
IPv6 one), unless the operator sets WEBHOOK_ALLOW_PRIVATE. `check_callback_url` runs at POST /process
and again before every delivery attempt; the dispatcher then connects to exactly the addresses it
returned (sender.py), so a DNS answer that changes in between cannot redirect a delivery.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator

import httpx

from mediaflow.logs import get_logger

log = get_logger("webhooks")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_PRIVATE_HINT = (
    "webhooks are only sent to public addresses (an operator can allow private ones with WEBHOOK_ALLOW_PRIVATE=true)"
)


class CallbackUrlError(ValueError):
    """The callback URL is not acceptable; the message says why and what to do."""


class UnresolvableHostError(CallbackUrlError):
    """The host name does not resolve (now). At delivery time this is worth a retry."""


def check_url_shape(url: str, *, name: str = "callback_url", allow_credentials: bool = False) -> httpx.URL:
    """Parse `url` and check what can be checked without DNS: scheme, host, no credentials."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise CallbackUrlError(f"{name} is not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise CallbackUrlError(f"{name} must start with http:// or https:// (got {parsed.scheme or 'no scheme'!r})")
    if not parsed.host:
        raise CallbackUrlError(f"{name} has no host name: {url!r}")
    if parsed.userinfo and not allow_credentials:
        # Credentials in a URL end up in logs and in GET /status; a token in the path or query is
        # just as good for the receiver and can be rotated the same way.
        raise CallbackUrlError(
            f"{name} must not contain a user name or password; put a token in the path or query instead, "
            "and verify the MediaFlow-Signature header"
        )
    return parsed


def _addresses_to_check(ip: IPAddress) -> Iterator[IPAddress]:
    """The address itself and any IPv4 address embedded in it that the packets would really reach."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:127.0.0.1 *is* 127.0.0.1
            yield ip.ipv4_mapped
            return
        if ip in _NAT64_PREFIX:  # 64:ff9b::a00:1 reaches 10.0.0.1 through a NAT64 gateway
            yield ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            return
        if ip.sixtofour is not None:  # 2002:7f00:1:: tunnels to 127.0.0.1
            yield ip.sixtofour
    yield ip


_NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


def _non_public_kind(ip: IPAddress) -> str | None:
    """What kind of non-public address `ip` is, or None if it is a public unicast address."""
    checks = (
        ("an unspecified address", ip.is_unspecified),
        ("a loopback address", ip.is_loopback),
        ("a link-local address", ip.is_link_local),
        ("a multicast address", ip.is_multicast),
        ("a private address", ip.is_private),
        ("a reserved address", ip.is_reserved),
        ("an address that is not publicly routable", not ip.is_global),  # e.g. 100.64.0.0/10 (carrier-grade NAT)
    )
    return next((kind for kind, applies in checks if applies), None)


def address_problem(ip: IPAddress) -> str | None:
    """Why a webhook must not be sent to `ip` (e.g. "127.0.0.1, a loopback address"), or None."""
    for candidate in _addresses_to_check(ip):
        kind = _non_public_kind(candidate)
        if kind is not None:
            shown = str(candidate) if candidate == ip else f"{ip} (= {candidate})"
            return f"{shown}, {kind}"
    return None


async def resolve(host: str, port: int, timeout: float) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order (an IP literal resolves to itself)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    except UnicodeError as exc:  # the IDNA codec refuses it: empty or over-long labels ("a..b")
        raise CallbackUrlError(f"callback_url host {host!r} is not a valid host name ({exc})") from exc
    except (TimeoutError, OSError) as exc:
        reason = f"no answer within {timeout:g} s" if isinstance(exc, asyncio.TimeoutError) else str(exc)
        raise UnresolvableHostError(
            f"callback_url host {host!r} does not resolve ({reason}); check the host name"
        ) from exc
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(sockaddr[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses


async def check_callback_url(url: str, *, allow_private: bool, timeout: float) -> list[IPAddress]:
    """Check a user-supplied callback URL and return the addresses it may be delivered to.

    Every resolved address must be public: a host with one public and one private address is refused
    (otherwise which one we reach would be up to the resolver's order)."""
    parsed = check_url_shape(url)
    host = parsed.raw_host.decode("ascii")
    addresses = await resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80), timeout)
    if not allow_private:
        for ip in addresses:
            problem = address_problem(ip)
            if problem is None:
                continue
            if addresses == [_ip_literal(host)]:  # the user's own literal: nothing to hide
                raise CallbackUrlError(f"callback_url points to {problem}; {_PRIVATE_HINT}")
            # What a name resolves to inside our network is ours to know, not the caller's: the kind
            # of address only, the address itself in the server log.
            log.info("callback_url.refused", host=parsed.host, address=problem)
            raise CallbackUrlError(
                f"callback_url host {parsed.host!r} resolves to {problem.split(', ', 1)[1]}; {_PRIVATE_HINT}"
            )
    return addresses


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
