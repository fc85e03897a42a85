"""Where MediaFlow may connect on a user's behalf: the one SSRF check, shared by webhooks
(`callback_url`) and sources by URL.

A user-supplied URL must be http(s) without credentials, and every address its host resolves to must
be public: not loopback, private, link-local, unique-local, multicast, reserved or unspecified, in any
spelling (decimal, hex and octal IPv4, an IPv4 address inside IPv6, `localhost`). An operator may allow
private networks (`allow_private`); cloud metadata endpoints stay refused even then, because they hand
out the machine's credentials.

Checking is half of it: the caller must then connect to exactly the addresses `check_url` returned
(`pinned`), so a DNS answer that changes between check and connect (rebinding) cannot redirect it.
This module is a leaf (it imports nothing of ours) so that `webhooks/` and `media/` share it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import httpx

from mediaflow.logs import get_logger

log = get_logger("ssrf")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> every address the host resolves to. Tests pass a stub: they check address classes
# without ever connecting to one.
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

# Instance metadata services (AWS/GCP/Azure/OpenStack, AWS ECS tasks, AWS over IPv6, Alibaba): refused
# even when private addresses are allowed.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
# What inet_aton reads as an IPv4 address: 1 to 4 parts, each decimal, octal (leading 0) or hex (0x).
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.IGNORECASE)


class UrlRefusedError(ValueError):
    """The URL may not be used; the message says why and what to do."""


class UnresolvableHostError(UrlRefusedError):
    """The host name does not resolve (now). Worth another try later."""


@dataclass(frozen=True)
class CheckedUrl:
    url: httpx.URL
    addresses: list[IPAddress]  # in the resolver's order; connect to these, never to the name


def check_url_shape(url: str, *, name: str, allow_credentials: bool = False) -> httpx.URL:
    """Parse `url` and check what can be checked without DNS: scheme, host, no credentials."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise UrlRefusedError(f"{name} is not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise UrlRefusedError(f"{name} must start with http:// or https:// (got {parsed.scheme or 'no scheme'!r})")
    if not parsed.host:
        raise UrlRefusedError(f"{name} has no host name: {url!r}")
    if parsed.userinfo and not allow_credentials:
        # Credentials in a URL end up in logs and in GET /status; a token in the path or query works
        # just as well (a presigned URL is one) and can be rotated the same way.
        raise UrlRefusedError(
            f"{name} must not contain a user name or password; put a token in the path or query instead"
        )
    return parsed


def host_literal(host: str) -> IPAddress | None:
    """The address a host written as an IP literal stands for, in any spelling a resolver accepts
    ("127.1", "2130706433", "0x7f.0.0.1", "::ffff:127.0.0.1"); None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _is_localhost_name(host: str) -> bool:
    # RFC 6761: "localhost" and every name below it are loopback, whatever a resolver says.
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


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


def _non_public_kind(ip: IPAddress) -> str | None:
    """What kind of non-public address `ip` is, or None if it is a public unicast address."""
    checks = (
        ("an unspecified address", ip.is_unspecified),
        ("a loopback address", ip.is_loopback),
        ("a link-local address", ip.is_link_local),
        ("a multicast address", ip.is_multicast),
        ("a private address (unique-local)", isinstance(ip, ipaddress.IPv6Address) and ip in _UNIQUE_LOCAL),
        ("a private address", ip.is_private),
        ("a reserved address", ip.is_reserved),
        ("an address that is not publicly routable", not ip.is_global),  # e.g. 100.64.0.0/10 (carrier-grade NAT)
    )
    return next((kind for kind, applies in checks if applies), None)


_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")


def address_problem(ip: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why MediaFlow must not connect to `ip` (e.g. "127.0.0.1, a loopback address"), or None."""
    for candidate in _addresses_to_check(ip):
        shown = str(candidate) if candidate == ip else f"{ip} (= {candidate})"
        kind = None if allow_private else _non_public_kind(candidate)
        if kind is None and candidate in METADATA_ADDRESSES:
            kind = "a cloud metadata address"
        if kind is not None:
            return f"{shown}, {kind}"
    return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order (an IP literal resolves to itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(sockaddr[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses


def check_literal_host(parsed: httpx.URL, *, name: str, allow_private: bool, hint: str) -> None:
    """The checks that need no DNS: a host that is an IP literal or a localhost name. Cheap enough for
    a synchronous request validator; `check_url` repeats them."""
    host = parsed.host
    if _is_localhost_name(host) and not allow_private:
        raise UrlRefusedError(f"{name} host {host!r} resolves to a loopback address; {hint}")
    literal = host_literal(host)
    problem = None if literal is None else address_problem(literal, allow_private=allow_private)
    if problem is None:
        return
    if str(literal) == host.strip("[]"):
        raise UrlRefusedError(f"{name} points to {problem}; {hint}")
    # Another spelling ("2130706433", "0x7f.1"): name what it stands for, so the refusal makes sense.
    address, kind = problem.split(", ", 1)
    raise UrlRefusedError(f"{name} host {host!r} resolves to {kind} ({address}); {hint}")


async def check_url(
    url: str,
    *,
    name: str,
    allow_private: bool,
    timeout: float,
    hint: str,
    allow_credentials: bool = False,
    resolver: Resolver = resolve,
) -> CheckedUrl:
    """Check a user-supplied URL and return it with the addresses it may be fetched from.

    Every resolved address must pass: a host with one public and one private address is refused
    (otherwise which one is reached would be up to the resolver's order)."""
    parsed = check_url_shape(url, name=name, allow_credentials=allow_credentials)
    check_literal_host(parsed, name=name, allow_private=allow_private, hint=hint)
    host = parsed.raw_host.decode("ascii")
    literal = host_literal(host)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if literal is not None:
        return CheckedUrl(parsed, [literal])
    try:
        addresses = await asyncio.wait_for(resolver(host, port), timeout)
    except UnicodeError as exc:  # the IDNA codec refuses it: empty or over-long labels ("a..b")
        raise UrlRefusedError(f"{name} host {host!r} is not a valid host name ({exc})") from exc
    except (TimeoutError, OSError) as exc:
        reason = f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError) else str(exc)
        raise UnresolvableHostError(f"{name} host {host!r} does not resolve ({reason}); check the host name") from exc
    if not addresses:
        raise UnresolvableHostError(f"{name} host {host!r} has no address; check the host name")
    for ip in addresses:
        problem = address_problem(ip, allow_private=allow_private)
        if problem is not None:
            # What a name resolves to inside our network is ours to know, not the caller's: the kind
            # of address only, the address itself in the server log.
            log.info("url.refused", what=name, host=parsed.host, address=problem)
            raise UrlRefusedError(f"{name} host {parsed.host!r} resolves to {problem.split(', ', 1)[1]}; {hint}")
    return CheckedUrl(parsed, addresses)


def pinned(url: httpx.URL, ip: IPAddress) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """(URL, headers, request extensions) that reach `ip` while the server sees the URL's host name:
    `Host` and, for https, the TLS server name (SNI and the certificate check) stay the name."""
    headers = {"Host": url.netloc.decode("ascii")}
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    return url.copy_with(host=str(ip)), headers, extensions
