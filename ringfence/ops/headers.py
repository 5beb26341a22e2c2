"""Security headers on every response, added where the route has not set its own.

Every answer is ``nosniff``, sends no referrer and cannot be framed; HTML gets a strict CSP
(pages that need more, such as the sign-in and consent pages, set theirs and keep it). Nothing
is stored by a cache unless the route says so, and responses that carry credentials or tool
results are never stored (RFC 6749 §5.1: token responses MUST carry ``Cache-Control: no-store``).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ringfence.config import MCP_PATH

# Routes whose answers carry tokens, client secrets or tool results.
NO_STORE_PATHS = frozenset({MCP_PATH, "/token", "/register", "/revoke", "/introspect"})
HTML_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; " \
           "base-uri 'none'"
OTHER_CSP = "default-src 'none'; frame-ancestors 'none'"  # OWASP REST security: APIs forbid framing too
HSTS = "max-age=31536000"  # one year; subdomains are the operator's to decide
Headers = list[tuple[bytes, bytes]]


def with_security_headers(headers: Headers, *, no_store: bool = False, https: bool = False) -> Headers:
    """``headers`` plus each security header it lacks; never a second copy of one it has."""
    present = {name.lower(): value for name, value in headers}
    html = present.get(b"content-type", b"").lower().startswith(b"text/html")
    defaults = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", (HTML_CSP if html else OTHER_CSP).encode()),
        (b"cache-control", b"no-store"),
    ]
    if https:
        defaults.append((b"strict-transport-security", HSTS.encode()))
    result = [*headers, *((name, value) for name, value in defaults if name not in present)]
    cache = present.get(b"cache-control")
    if no_store and cache is not None and b"no-store" not in cache.lower():
        # e.g. the MCP SDK's "no-cache, no-transform" on event streams: stored-but-revalidated is not enough.
        keep = b", no-transform" if b"no-transform" in cache.lower() else b""
        result = [(n, v) for n, v in result if n.lower() != b"cache-control"] + [(b"cache-control", b"no-store" + keep)]
    return result


class SecurityHeaders:
    """Outermost on the request path, so that every answer gets the headers, refusals included.
    ``https``: the public URL is https, so answers carry HSTS."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = scope["path"] in NO_STORE_PATHS

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = with_security_headers(list(message.get("headers", [])), no_store=no_store,
                                                https=self.https)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_secured)
