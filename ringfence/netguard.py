"""Outbound connections to public addresses only: the server-side request forgery (SSRF) guard shared by
every request ringfence makes for someone else (client metadata documents, tools' HTTP requests).

A host is resolved once; every address it resolves to must be globally routable (``ipaddress``
properties, not hand-written ranges), and the connection goes to those checked addresses only
(:class:`PinnedBackend`), never through a second lookup, so a name cannot rebind to a private
address between the check and the connection. Loopback is reachable only where a caller allows it
explicitly; private and link-local addresses never are.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from typing import Any

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# NAT64 well-known prefix (RFC 6052 §2.1): the last 32 bits are the IPv4 host actually reached.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class AddressRefused(Exception):
    """A host that may not be connected to; ``reason`` is for the operator's log, never for the caller
    (a name that does not resolve and one that resolves privately must look the same from outside)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NameNotResolved(AddressRefused):
    """A host with no address at all. An :class:`AddressRefused` still, so a caller that must not tell
    the two apart (client metadata: no name probing) treats them alike; one whose hosts are declared
    by the app's author (tools' requests) may report it as a failure."""


def is_public_address(address: IPAddress) -> bool:
    """Whether an address is globally routable; private, loopback, link-local, multicast, reserved,
    unspecified, shared (100.64/10), site-local and embedded IPv4 forms of those are not."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None and not is_public_address(address.sixtofour):
            return False
        if address.is_site_local or address.teredo is not None:
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def is_loopback_address(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def may_connect(address: IPAddress, *, allow_loopback: bool) -> bool:
    # MCP Security Best Practices, SSRF: block private, loopback and link-local ranges, and
    # (CIMD, SSRF) every special-use address; loopback only where explicitly allowed.
    return is_public_address(address) or (allow_loopback and is_loopback_address(address))


def ip_literal(host: str) -> IPAddress | None:
    """The address a host written as an IP literal stands for, or ``None`` for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback IP literal."""
    if host == "localhost":
        return True
    literal = ip_literal(host)
    return literal is not None and is_loopback_address(literal)


async def resolve_checked(host: str, port: int, *, allow_loopback: bool) -> tuple[IPAddress, ...]:
    """The addresses to connect to for ``host``, looked up exactly once (an IP literal is not looked up);
    :class:`AddressRefused` unless every one may be connected to."""
    literal = ip_literal(host)
    if literal is not None:
        if not may_connect(literal, allow_loopback=allow_loopback):
            raise AddressRefused("is an address that is not public")  # refused before any I/O
        return (literal,)
    try:  # the loop's resolver threads: the event loop never waits on a lookup
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = tuple(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    except (OSError, UnicodeError, ValueError):
        addresses = ()
    if not addresses:
        raise NameNotResolved("does not resolve")
    # MCP Security Best Practices, SSRF: every answer is checked, so a mixed public/private
    # answer cannot slip a private address in.
    if not all(may_connect(address, allow_loopback=allow_loopback) for address in addresses):
        raise AddressRefused("resolves to an address that is not public")
    return addresses


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the addresses already resolved and checked, never to the URL's name again.

    httpcore still hands the URL's host name to ``start_tls``, so SNI and certificate checks
    (and the Host header) are for the name the client gave, not for the address.
    """

    def __init__(self, addresses: tuple[str, ...]) -> None:
        self._addresses = addresses
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        error: Exception = httpcore.ConnectError("no address to connect to")
        for address in self._addresses:
            try:
                return await self._backend.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: typing.Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("requests for others never go over a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)
