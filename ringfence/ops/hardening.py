"""DNS-rebinding protection: only the public host, and browser pages from the public origin."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ringfence.config import MCP_PATH, Settings
from ringfence.httpio import header, send_refusal
from ringfence.refusals import ForbiddenOrigin, MisdirectedHost


class HostOriginCheck:
    """Refuses a ``Host`` that is not the public URL's (421) and a foreign ``Origin`` on ``/mcp`` (403).

    Built from the public URL, so it works behind a real hostname without extra settings
    (MCP transports: servers MUST validate ``Origin``).
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.hosts = settings.allowed_host_headers()
        self.origins = settings.allowed_origin_headers()
        self.metadata_url = settings.resource_metadata_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            hosts = header(scope, b"host")
            if len(hosts) != 1 or hosts[0].decode("latin-1").lower() not in self.hosts:
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
