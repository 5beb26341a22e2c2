"""The client's address behind the reverse proxies the operator lists (``--trusted-proxy``).

Without a listed proxy nothing here runs and forwarding headers are ignored: the TCP peer is the
client. With one, a request whose peer is a listed proxy has its forwarding header read (only
the one the operator names: ``X-Forwarded-For``, or RFC 7239 ``Forwarded``, never both, since a
proxy that writes one passes the other through from the client), from the right: each trusted
proxy vouches for the hop before it, and the client is the rightmost address that is not itself
a trusted proxy. What a client writes further left is never read. A hop a trusted proxy could not
name (``unknown``, an obfuscated name, a malformed value) leaves the request counted under that
proxy's own address. Every later step (rate limits, throttles, the access log, the audit log)
sees the result as the ASGI ``client``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

from starlette.types import ASGIApp, Receive, Scope, Send

from ringfence.config import ForwardingHeader
from ringfence.httpio import header

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(text: str) -> Address | None:
    """An IP address as proxies write one: bare, ``v4:port``, ``[v6]`` or ``[v6]:port``; IPv4-mapped
    IPv6 as IPv4. ``None`` for anything else (``unknown``, an obfuscated name, garbage)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # v4:port
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forwarded_for(value: str) -> str | None:
    """The ``for`` parameter of one RFC 7239 §4 forwarded-element, unquoted; ``None`` if it has none."""
    for pair in value.split(";"):
        name, equals, node = pair.partition("=")
        if equals and name.strip().lower() == "for":
            node = node.strip()
            return node[1:-1] if len(node) >= 2 and node[0] == node[-1] == '"' else node
    return None


class TrustedProxies:
    """The listed proxy networks, and the client address a request through them came from."""

    def __init__(self, networks: Iterable[str], header_name: ForwardingHeader = "x-forwarded-for") -> None:
        self.networks: tuple[Network, ...] = tuple(ipaddress.ip_network(network) for network in networks)
        self.header_name = header_name
        self._header = header_name.encode()

    def trusts(self, address: Address) -> bool:
        return any(address in network for network in self.networks)

    def hops(self, scope: Scope) -> Iterator[str]:
        """The forwarding header's hops, nearest first. RFC 9110 §5.3: several fields are one list.
        Splitting at every comma is safe: no address contains one, and a hop mangled by a comma in a
        client's quoted text lies to the left of every hop a trusted proxy wrote."""
        for field in reversed(header(scope, self._header)):
            for hop in reversed(field.decode("latin-1").split(",")):
                yield hop if self.header_name == "x-forwarded-for" else (forwarded_for(hop) or "")

    def client(self, peer: str, scope: Scope) -> str:
        """The address the request is from: the peer, or, when the peer is a trusted proxy, the
        rightmost forwarded hop that is not one (RFC 7239 §7.4: only trusted hops are believed)."""
        nearest = parse_address(peer)
        if nearest is None or not self.trusts(nearest):
            return peer
        for hop in self.hops(scope):
            address = parse_address(hop)
            if address is None:
                break  # a hop the trusted proxy could not name: count the request under the proxy
            nearest = address
            if not self.trusts(address):
                break
        return str(nearest)


class ProxiedClientAddress:
    """Pure ASGI, outermost: sets ``scope["client"]`` to the address the request came from. Installed
    only when proxies are listed (:func:`behind_proxies`), so it costs nothing otherwise."""

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if client and scope["type"] in ("http", "websocket"):
            address = self.proxies.client(str(client[0]), scope)
            if address != client[0]:
                # In place: uvicorn writes its access line from this same scope.
                scope["client"] = (address, 0)
        await self.app(scope, receive, send)


def behind_proxies(app: ASGIApp, networks: tuple[str, ...], header_name: ForwardingHeader) -> ASGIApp:
    """``app`` with the proxy step in front when ``networks`` lists any, else ``app`` itself."""
    if not networks:
        return app
    return ProxiedClientAddress(app, TrustedProxies(networks, header_name))


def describe_proxies(networks: tuple[str, ...], header_name: ForwardingHeader) -> list[str]:
    """The start-up line that says whose word on client addresses is taken."""
    if not networks:
        return []
    return [f"client addresses taken from {header_name} when the peer is a trusted proxy: {', '.join(networks)}"]
