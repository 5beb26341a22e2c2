"""DNS-rebinding protection: only the public host, and browser pages from the public origin."""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from ringfence.config import MCP_PATH
from ringfence.httpio import header, send_refusal
from ringfence.refusals import ForbiddenOrigin, MisdirectedHost

logger = logging.getLogger("ringfence")


class HostOriginCheck:
    """Refuses a ``Host`` that is not the public URL's (421) and a foreign ``Origin`` on ``/mcp`` (403).

    Built from the public URL, so it works behind a real hostname without extra settings
    (MCP transports: servers MUST validate ``Origin``). The first 421 is logged with the host
    received and the hosts expected, once: a wrong ``--public-url`` shows in the log at the first
    request, and a client sending bad hosts cannot fill the log. ``hosts`` and ``origins`` are the
    allowed header values, lower-case; ``metadata_url`` is named in the refusals' challenge.
    """

    def __init__(self, app: ASGIApp, *, hosts: frozenset[str], origins: frozenset[str], metadata_url: str) -> None:
        self.app = app
        self.hosts = hosts
        self.origins = origins
        self.metadata_url = metadata_url
        self.misdirected_logged = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            hosts = header(scope, b"host")
            if len(hosts) != 1 or hosts[0].decode("latin-1").lower() not in self.hosts:
                self.log_first_misdirected(hosts)
                await send_refusal(send, MisdirectedHost("This server does not answer to that host name."),
                                   self.metadata_url)
                return
            origins = header(scope, b"origin")
            if scope["path"].startswith(MCP_PATH) and origins and (
                len(origins) > 1 or origins[0].decode("latin-1").lower() not in self.origins
            ):
                await send_refusal(send, ForbiddenOrigin("Requests from that origin are not allowed."),
                                   self.metadata_url)
                return
        await self.app(scope, receive, send)

    def log_first_misdirected(self, hosts: list[bytes]) -> None:
        if self.misdirected_logged:
            return
        self.misdirected_logged = True
        received = " and ".join(repr(host.decode("latin-1")[:100]) for host in hosts) or "none"
        logger.warning(
            "answered 421 to a request for host %s: this server answers only to %s (from --public-url and "
            "--allowed-host); if clients reach it there, fix --public-url (logged once; later 421s are not)",
            received, ", ".join(sorted(self.hosts)),
        )
