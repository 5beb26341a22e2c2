"""``/metrics``: answered to a scraper presenting the metrics token, or, when the public URL is
itself loopback (development), to a loopback peer.

Anyone else gets the 404 of a path that does not exist, so the endpoint is not advertised. It
sits outside the Host check so that a scraper on the same machine can use ``127.0.0.1:PORT``
whatever the public URL is; a Host that is neither the public one nor a loopback literal is
still refused there (a DNS-rebinding page never sends a loopback Host).
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from ringfence.config import is_loopback_host
from ringfence.httpio import header, send_response
from ringfence.monitor.metrics import Metrics

METRICS_PATH = "/metrics"
# A request relayed by a proxy on this machine comes from loopback too: these headers give it away.
_PROXY_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-real-ip")


def is_loopback_peer(scope: Scope) -> bool:
    """Whether the TCP peer is a loopback address and no proxy header says it relays someone else."""
    client = scope.get("client")
    if not client:
        return False  # unknown peer (e.g. a Unix socket behind a proxy): fail closed
    try:
        loopback = ipaddress.ip_address(str(client[0])).is_loopback
    except ValueError:
        return False
    return loopback and not any(header(scope, name) for name in _PROXY_HEADERS)


def loopback_deployment(base_url: str) -> bool:
    """Whether the public URL itself is a loopback address (development, or a scraper-only host)."""
    return is_loopback_host(urlsplit(base_url).hostname or "")


def presents_token(scope: Scope, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    values = header(scope, b"authorization")
    if len(values) != 1:
        return False
    scheme, _, presented = values[0].decode("latin-1").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())


class MetricsEndpoint:
    """Pure ASGI: answers ``GET /metrics`` for allowed scrapers and passes everything else on.

    With ``token`` set, every scraper must present it, loopback included (behind a reverse proxy
    on the same machine every request comes from loopback); without it, only loopback peers are
    answered, and only when the public URL ``base_url`` is loopback. ``hosts``: the Host values
    the server answers to, lower-case.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, *, token: str | None, hosts: frozenset[str],
                 base_url: str) -> None:
        self.app = app
        self.metrics = metrics
        self.token = token
        self.hosts = hosts
        self.loopback_deployment = loopback_deployment(base_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == METRICS_PATH and scope["method"] == "GET" \
                and self.allowed(scope):
            accept = b", ".join(header(scope, b"accept")).decode("latin-1")
            body, content_type = self.metrics.render(accept)
            await send_response(send, 200, [(b"content-type", content_type.encode()),
                                            (b"cache-control", b"no-store")], body)
            return
        await self.app(scope, receive, send)  # not ours, or refused: the app's own 404 (or 421)

    def allowed(self, scope: Scope) -> bool:
        if not self._host_allowed(scope):
            return False
        if self.token is not None:
            return presents_token(scope, self.token)
        # Behind a public name a reverse proxy on this machine makes every request a loopback peer,
        # and need not add any forwarding header: there, only the token opens /metrics.
        return self.loopback_deployment and is_loopback_peer(scope)

    def _host_allowed(self, scope: Scope) -> bool:
        hosts = header(scope, b"host")
        if len(hosts) != 1:
            return False
        host = hosts[0].decode("latin-1").lower()
        if host in self.hosts:
            return True
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return is_loopback_host(name)  # a page served from another name never sends a loopback Host

