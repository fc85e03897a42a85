"""The one SSRF checker (mediaflow/ssrf.py), shared by callback URLs and sources by URL. Every address
class is checked with a stubbed resolver: the checker decides before any connection, and these tests
never open one."""

from __future__ import annotations

import ipaddress

import pytest

from mediaflow.media.errors import SourceError
from mediaflow.media.url_sources import check_url_source
from mediaflow.ssrf import IPAddress, UnresolvableHostError, UrlRefusedError, address_problem, check_url, host_literal
from tests.apptools import make_settings


def resolver(*addresses: str):
    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in addresses]

    return resolve


async def check(url: str, *addresses: str, allow_private: bool = False):
    return await check_url(
        url, name="source", allow_private=allow_private, timeout=2, hint="(hint)", resolver=resolver(*addresses)
    )


@pytest.mark.parametrize(
    "address, kind",
    [
        ("10.0.0.5", "a private address"),
        ("172.16.3.4", "a private address"),
        ("192.168.1.10", "a private address"),
        ("169.254.10.20", "a link-local address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("fd12:3456::1", "unique-local"),
        ("fd00:ec2::254", "unique-local"),
        ("100.64.0.1", "not publicly routable"),
        ("100.100.100.200", "not publicly routable"),
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:10.0.0.5", "a private address"),
        ("224.0.0.1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("240.0.0.1", "a private address"),  # reserved (240/4); Python's is_private counts it first
    ],
)
async def test_a_name_resolving_to_a_non_public_address_is_refused(address, kind):
    with pytest.raises(UrlRefusedError) as refused:
        await check("https://videos.example.com/clip.mp4", address)
    message = str(refused.value)
    assert "host 'videos.example.com' resolves to " in message and kind in message, message
    assert address not in message  # the caller learns the kind, not our network's addresses


async def test_one_private_address_among_public_ones_is_enough_to_refuse():
    with pytest.raises(UrlRefusedError, match="a private address"):
        await check("https://videos.example.com/clip.mp4", "93.184.215.14", "10.0.0.5")


async def test_public_addresses_pass_and_are_returned_in_order():
    checked = await check("https://videos.example.com/clip.mp4?sig=1", "93.184.215.14", "2606:4700:4700::1111")
    assert [str(a) for a in checked.addresses] == ["93.184.215.14", "2606:4700:4700::1111"]
    assert checked.url.host == "videos.example.com"


@pytest.mark.parametrize(
    "address", ["169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200", "::ffff:169.254.169.254"]
)
async def test_metadata_addresses_are_refused_even_when_private_networks_are_allowed(address):
    with pytest.raises(UrlRefusedError, match="a cloud metadata address"):
        await check("http://minio.internal/clip.mp4", address, allow_private=True)
    assert address_problem(ipaddress.ip_address(address), allow_private=True) is not None


@pytest.mark.parametrize("address", ["10.0.0.5", "fd12:3456::1", "127.0.0.1", "169.254.10.20"])
async def test_private_networks_pass_when_allowed(address):
    checked = await check("http://minio.internal:9000/bucket/clip.mp4", address, allow_private=True)
    assert checked.addresses == [ipaddress.ip_address(address)]


async def test_an_ip_literal_is_checked_without_asking_the_resolver():
    async def must_not_resolve(host: str, port: int) -> list[IPAddress]:
        raise AssertionError("a literal needs no lookup")

    with pytest.raises(UrlRefusedError, match="points to 10.1.1.1, a private address"):
        await check_url(
            "http://10.1.1.1/", name="source", allow_private=False, timeout=1, hint="", resolver=must_not_resolve
        )
    checked = await check_url(
        "http://8.8.8.8/", name="source", allow_private=False, timeout=1, hint="", resolver=must_not_resolve
    )
    assert checked.addresses == [ipaddress.ip_address("8.8.8.8")]


@pytest.mark.parametrize(
    "host, address",
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("012.0.0.1", "10.0.0.1"),  # octal 012 = 10
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("videos.example.com", None),
        ("cafe.be", None),
    ],
)
def test_every_ipv4_spelling_is_read_as_the_resolver_would(host, address):
    literal = host_literal(host)
    assert (str(literal) if literal else None) == address


async def test_a_host_that_does_not_resolve_is_a_retryable_refusal():
    async def nxdomain(host: str, port: int) -> list[IPAddress]:
        raise OSError("Name or service not known")

    with pytest.raises(UnresolvableHostError, match="does not resolve"):
        await check_url(
            "https://nowhere.example/", name="source", allow_private=False, timeout=1, hint="", resolver=nxdomain
        )


async def test_sources_say_which_setting_allows_private_networks(tmp_path):
    settings = make_settings(tmp_path)
    with pytest.raises(SourceError, match="SOURCE_URL_ALLOW_PRIVATE=true"):
        await check_url_source("http://nas.lan/clip.mp4", settings, resolver=resolver("192.168.1.20"))
    with pytest.raises(SourceError, match="cloud metadata addresses are refused always"):
        await check_url_source("http://nas.lan/clip.mp4", settings, resolver=resolver("169.254.169.254"))
