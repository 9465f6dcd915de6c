"""The private-network guard for webhook targets (SSRF protection).

A target is refused when its host is, or resolves to, an address in a loopback,
private (RFC 1918, ULA), link-local (incl. 169.254.169.254), carrier-grade NAT,
unspecified, multicast or reserved network, in IPv4, IPv6 or IPv4-mapped form,
and in the odd IPv4 spellings (`2130706433`, `0177.0.0.1`, `0x7f.1`) that
resolvers accept. The runner checks again after DNS resolution and after every
redirect; saving a step checks what can be checked without the network.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

CGNAT = ipaddress.ip_network("100.64.0.0/10")
# NAT64 and 6to4 can embed any IPv4 address; they are not public destinations.
_EMBEDDING_V6 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("2002::/16"))


class BlockedTarget(ValueError):
    """A URL whose target is not allowed; the message says why."""


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:
        # inet_aton accepts the historic spellings: 2130706433, 0177.0.0.1, 0x7f.1
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why `address` is not a public destination, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address_problem(address.ipv4_mapped)
        if address.sixtofour is not None:
            return address_problem(address.sixtofour)
        if any(address in net for net in _EMBEDDING_V6):
            return address_problem(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.is_loopback:
        return "loopback address"
    if address.is_link_local:
        return "link-local address"
    if isinstance(address, ipaddress.IPv4Address) and address in CGNAT:
        return "carrier-grade NAT address"
    if address.is_private:
        return "private network address"
    if address.is_unspecified:
        return "unspecified address"
    if address.is_multicast:
        return "multicast address"
    if address.is_reserved:
        return "reserved address"
    return None


def check_url_syntax(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or `BlockedTarget` saying what is wrong."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BlockedTarget(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise BlockedTarget("must be an http:// or https:// URL")
    if not parts.hostname:
        raise BlockedTarget("has no host")
    if parts.username or parts.password:
        raise BlockedTarget("must not contain credentials")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def check_url_static(url: str, allow_private: bool) -> None:
    """The checks possible without DNS: syntax, literal addresses and `localhost`."""
    _, host, _ = check_url_syntax(url)
    if allow_private:
        return
    lowered = host.lower().rstrip(".")
    if lowered == "localhost" or lowered.endswith(".localhost"):
        raise BlockedTarget(f"targets {host}, a loopback name")
    address = _literal_address(host)
    if address is not None:
        problem = address_problem(address)
        if problem:
            raise BlockedTarget(f"targets {host}, a {problem}")


def resolve_and_check(url: str, allow_private: bool) -> list[str]:
    """Resolve the URL's host and refuse it when any address is not public.

    Returns the resolved addresses (the caller connects to one of them, so a
    second, different DNS answer cannot slip a private address in).
    """
    check_url_static(url, allow_private)
    _, host, port = check_url_syntax(url)
    literal = _literal_address(host)
    if literal is not None:
        return [str(literal)]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc}") from exc
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not allow_private:
            problem = address_problem(address)
            if problem:
                raise BlockedTarget(f"{host} resolves to {address}, a {problem}")
        addresses.append(str(address))
    return addresses
