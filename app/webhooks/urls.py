"""The checks on a webhook URL: an absolute http(s) URL we can send to, and, for a task's own
`callback_url` (the submitter's choice), only public addresses unless WEBHOOK_ALLOW_PRIVATE is set: a
literal non-public IP or `localhost` is refused at submit, and a host name is resolved again before
each attempt (the operator's WEBHOOK_URL is trusted)."""

import asyncio
import ipaddress
import re
import socket
from urllib.parse import urlsplit

import httpx

from app.core.errors import InvalidParameters

MAX_URL = 2000
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")  # blanks and control characters: never part of a URL we send to


def url_problem(url: object) -> str | None:
    """Why `url` cannot receive webhooks (None if it can): an absolute http(s) URL with a host."""
    if not isinstance(url, str):
        return "must be a string (an absolute http:// or https:// URL)"
    if len(url) > MAX_URL:
        return f"must be at most {MAX_URL} characters"
    if _UNSAFE.search(url):
        return "must not contain blanks or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a port that is not a number in range
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return f"must be an absolute http:// or https:// URL, got {url[:60]!r}"
    try:  # what the sender will make of it: httpx refuses some hosts urlsplit takes (bad IDNA labels)
        httpx.URL(url).host  # noqa: B018 -- decodes the IDNA host as httpx does when it sends
        _host(url).encode("idna")  # labels empty or too long
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        return f"has a host that cannot be sent to ({str(exc)[:100]})"
    return None


def _host(url: str) -> str:
    """The host the sender connects to, as httpx parses `url`: ASCII (IDNA), an IPv6 one without brackets."""
    return httpx.URL(url).raw_host.decode("ascii")


Address = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052's well-known prefix: the IPv4 address in the last 32 bits
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215's local-use prefix: a site's own translator
# RFC 2765's IPv4-translated addresses (SIIT), ::ffff:0:a.b.c.d; not ::ffff:0:0/96, the IPv4-mapped ones
TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries and reaches through a translator or a tunnel: IPv4-mapped
    (::ffff:a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64
    (64:ff9b::a.b.c.d) or 6to4 (2002:AABB:CCDD::)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64 or address in TRANSLATED or (int(address) >> 32 == 0 and int(address) > 1):  # not `::`, `::1`
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def not_public(address: Address) -> bool:
    """Loopback, private, link-local, reserved, unspecified (none is global) or multicast (some are), in
    any spelling: an IPv6 address with a zone id, a Teredo or local-use NAT64 one (whose real end is a
    relay's or a site's choice), a site-local one (fec0::/10, deprecated but routed inside a site), or one
    carrying an IPv4 address that is itself not public. Python 3.11 calls `64:ff9b::7f00:1`,
    `2002:7f00:1::`, `::127.0.0.1`, `::ffff:0:7f00:1` and `fec0::1` global: they are checked here."""
    if not address.is_global or address.is_multicast:
        return True
    if isinstance(address, ipaddress.IPv4Address):
        return False
    if address.scope_id is not None or address.teredo is not None or address in LOCAL_NAT64 or address.is_site_local:
        return True
    inner = embedded_ipv4(address)
    return inner is not None and not_public(inner)


def _literal_address(host: str) -> Address | None:
    """The address a host written as one stands for, in any form the resolver takes (`127.1`,
    `0x7f.0.0.1` and `2130706433` are 127.0.0.1 too); None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def private_problem(url: str) -> str | None:
    """Why a callback to `url` is refused at submit (None if not): a literal non-public address or localhost."""
    host = _host(url).rstrip(".").lower()
    if "%" in host:  # a percent-encoded name, or an IPv6 zone id: each a way around the checks below
        return f"must not have a percent-encoded host or an IPv6 zone id, got {host[:60]!r}"
    if host == "localhost" or host.endswith(".localhost"):
        return f"must not point at this machine ({host}); set WEBHOOK_ALLOW_PRIVATE=true to allow private receivers"
    address = _literal_address(host)
    if address is not None and not_public(address):
        return (f"must be a public address, not {address} (loopback, private, link-local, multicast, reserved or "
                "unspecified); set WEBHOOK_ALLOW_PRIVATE=true to allow private receivers")
    return None


class Refused(Exception):
    """A callback whose host resolves to an address it may not reach: a failed attempt, never retried."""


async def check_resolved(url: str) -> None:
    """Before an attempt: every address `url`'s host resolves to must be public (Refused if not;
    OSError if it does not resolve). httpx resolves the name again when it connects: see
    docs/webhooks.md (DNS rebinding) for the window that leaves."""
    parsed = httpx.URL(url)
    host = _host(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for *_, sockaddr in found:
        address = ipaddress.ip_address(sockaddr[0])
        if not_public(address):
            raise Refused(f"refused: {host} resolves to {address}, not a public address (loopback, private, "
                          "link-local, multicast, reserved or unspecified); WEBHOOK_ALLOW_PRIVATE is off")


def callback_problem(value: object, *, signed: bool, allow_private: bool) -> str | None:
    """Why `value` cannot be a task's `callback_url` on this server (None if it can)."""
    if problem := url_problem(value):
        return problem
    if not signed:
        return "webhooks are off on this server: WEBHOOK_SECRET is not set, and nothing is ever sent unsigned"
    return None if allow_private else private_problem(str(value))


def callback_url(value: object, *, signed: bool, allow_private: bool = False) -> str | None:
    """A submit's `callback_url`, checked (422 naming it): refused outright without a secret to sign
    with, and pointing at a private address unless `allow_private`."""
    if value is None:
        return None
    if problem := callback_problem(value, signed=signed, allow_private=allow_private):
        raise InvalidParameters("callback_url", problem)
    return str(value)
