"""Minimal CORS for browser-based MCP clients; the one place ``Access-Control-*`` headers are set.

- Public metadata (RFC 9728, RFC 8414, JWKS) is readable from any origin: ``*``, no credentials.
- ``/mcp``, ``/token``, ``/register`` and ``/revoke`` answer only origins in the allow-list (the
  public URL's origin and ``allowed_origins``), echoed back, never with ``Allow-Credentials``:
  browser clients send tokens in ``Authorization``, never cookies. A preflight from any other
  origin gets 403. The same allow-list is the DNS-rebinding check on ``/mcp`` (ops/hardening.py).
- Everything else (sign-in, consent, account, confirmation pages) gets no CORS at all.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ringfence.config import MCP_PATH, PRM_PATH
from ringfence.httpio import header, send_refusal
from ringfence.refusals import ForbiddenOrigin

PUBLIC_PATHS = frozenset({
    PRM_PATH,
    PRM_PATH + MCP_PATH,
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
    "/jwks.json",
})
ALLOW_LISTED_METHODS = {MCP_PATH: b"GET, POST, DELETE", "/token": b"POST", "/register": b"POST", "/revoke": b"POST"}
ALLOW_HEADERS = (b"Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, "
                 b"Mcp-Method, Mcp-Name")
EXPOSE_HEADERS = b"WWW-Authenticate, Mcp-Session-Id"
MAX_AGE = b"600"
Headers = list[tuple[bytes, bytes]]


class Cors:
    """Answers preflights and labels responses; refuses nothing but a preflight from a foreign origin.
    ``origins``: the allow-list, lower-case; ``metadata_url``: named in the refusal's challenge."""

    def __init__(self, app: ASGIApp, *, origins: frozenset[str], metadata_url: str) -> None:
        self.app = app
        self.origins = origins
        self.metadata_url = metadata_url

    def response_headers(self, path: str, origin: bytes | None) -> Headers | None:
        """The CORS headers for ``path`` requested from ``origin``; ``None`` when it gets none."""
        if path in PUBLIC_PATHS:
            return [(b"access-control-allow-origin", b"*")]
        if path not in ALLOW_LISTED_METHODS:
            return None
        headers = [(b"vary", b"Origin")]  # the answer depends on the Origin: caches must not mix them up
        if origin is not None and origin.decode("latin-1").lower() in self.origins:
            headers += [(b"access-control-allow-origin", origin), (b"access-control-expose-headers", EXPOSE_HEADERS)]
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        origins = header(scope, b"origin")
        origin = origins[0] if len(origins) == 1 else None
        cors = self.response_headers(path, origin)
        if cors is None:
            await self.app(scope, receive, strip_cors(send, []))
            return
        # Fetch standard, CORS-preflight request: OPTIONS with Origin and Access-Control-Request-Method.
        if scope["method"] == "OPTIONS" and origin is not None and header(scope, b"access-control-request-method"):
            await self.preflight(send, path, cors)
            return
        await self.app(scope, receive, strip_cors(send, cors))

    async def preflight(self, send: Send, path: str, cors: Headers) -> None:
        if not any(name == b"access-control-allow-origin" for name, _ in cors):
            await send_refusal(send, ForbiddenOrigin(
                "Cross-origin requests from this origin are not allowed here; the server's operator can allow "
                "a browser-based client's origin with --allowed-origin."), self.metadata_url)
            return
        methods = ALLOW_LISTED_METHODS.get(path, b"GET")
        headers = [*cors, (b"access-control-allow-methods", methods),
                   (b"access-control-allow-headers", ALLOW_HEADERS), (b"access-control-max-age", MAX_AGE)]
        # RFC 9110 §8.6: no Content-Length on a 204.
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def strip_cors(send: Send, cors: Headers) -> Send:
    """A ``send`` that replaces whatever CORS headers the route set with ``cors``."""

    async def send_labelled(message: Message) -> None:
        if message["type"] == "http.response.start":
            kept = [(n, v) for n, v in message.get("headers", []) if not n.lower().startswith(b"access-control-")]
            varies = b",".join(v for n, v in kept if n.lower() == b"vary").lower()
            added = [(n, v) for n, v in cors if not (n == b"vary" and b"origin" in varies)]
            message = {**message, "headers": [*kept, *added]}
        await send(message)

    return send_labelled
