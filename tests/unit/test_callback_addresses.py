"""Which addresses a task's callback may reach: every loopback, private and transition spelling refused
(IPv4 inside IPv6 checked, zone ids, Teredo, NAT64, 6to4, IPv4-translated, site-local, percent-encoded and
numeric IPv4 hosts), both as written at submit (`callback_problem`) and as a name resolves when sent
(`check_resolved`)."""

import ipaddress

import pytest

from app.webhooks.urls import Refused, callback_problem, check_resolved, not_public

REFUSED = [
    "127.0.0.1", "10.0.0.1", "169.254.169.254", "0.0.0.0", "::1", "::", "fe80::1%eth0",
    "64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b:1::808:808",  # NAT64: well-known (IPv4 inside) and local-use
    "2002:7f00:1::", "2002:a9fe:a9fe::1",  # 6to4 around 127.0.0.1 and 169.254.169.254
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo
    "::ffff:127.0.0.1", "::ffff:192.168.1.1", "::127.0.0.1", "::10.0.0.1",  # IPv4-mapped and -compatible
    "::ffff:0:7f00:1", "::ffff:0:a9fe:a9fe",  # IPv4-translated (::ffff:0:0:0/96): Python 3.11 calls them global
    "fec0::1", "feff::1",  # site-local (fec0::/10, deprecated): Python 3.11 calls them global
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1", "::ffff:0:808:808"]


@pytest.mark.parametrize("address", REFUSED)
def test_loopback_private_and_transition_addresses_are_not_public(address: str) -> None:
    assert not_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_and_transitions_to_them_are_public(address: str) -> None:
    assert not not_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("url", [
    "http://[64:ff9b::7f00:1]/h", "http://[2002:7f00:1::]/h", "http://[::127.0.0.1]/h", "http://[::ffff:7f00:1]/h",
    "http://[64:ff9b:1::a00:1]/h", "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/h", "http://[fe80::1%25eth0]/h",
    "http://[::ffff:0:7f00:1]/h", "http://[fec0::1]/h",
    "http://%31%32%37.0.0.1/h", "http://0x7f.1/h", "http://0177.0.0.1/h", "http://2130706433/h", "http://127.1/h",
])
def test_every_spelling_of_a_private_host_is_refused_at_submit(url: str) -> None:
    assert callback_problem(url, signed=True, allow_private=False) is not None, url


@pytest.mark.parametrize("url", ["https://8.8.8.8/h", "https://[2606:4700:4700::1111]/h", "https://example.com/h"])
def test_public_hosts_pass_at_submit(url: str) -> None:
    assert callback_problem(url, signed=True, allow_private=False) is None


@pytest.mark.parametrize("host", ["64:ff9b::7f00:1", "2002:7f00:1::", "::127.0.0.1", "::ffff:127.0.0.1", "::1",
                                  "::ffff:0:7f00:1", "fec0::1"])
async def test_an_address_resolved_at_send_time_is_classified_the_same(host: str) -> None:
    # the resolver's answer for a literal is the literal: what a name pointing there would give
    with pytest.raises(Refused, match="not a public address"):
        await check_resolved(f"http://[{host}]/h")
