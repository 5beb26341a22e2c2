"""Typed refusals, and the one place each becomes an HTTP answer or a tool error.

Every check on the request path raises one of these; nothing else builds status codes or
``WWW-Authenticate`` headers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable


class Refusal(Exception):
    """A request ringfence will not serve. ``status`` is its HTTP status."""

    status: int = 400
    error: str = "invalid_request"
    challenge: bool = False  # answered with a Bearer challenge (RFC 6750 §3)
    retry_after: str | None = None  # seconds, for a refusal that passes with time (RFC 9110 §10.2.3)

    def __init__(self, description: str, *, scopes: Iterable[str] = (), retry_after: str | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.scopes = tuple(sorted(set(scopes)))
        if retry_after is not None:
            self.retry_after = retry_after


class MissingToken(Refusal):
    """A protected operation without credentials. RFC 6750 §3.1: no error code in the challenge."""

    status = 401
    error = ""
    challenge = True


class InvalidToken(Refusal):
    """Malformed, badly signed, expired, not-yet-valid, wrong-issuer or wrong-audience token."""

    status = 401
    error = "invalid_token"
    challenge = True


class InvalidAuthorizationRequest(Refusal):
    """The credentials were sent in a way RFC 6750 forbids (query string, two headers, bad syntax)."""

    status = 400
    error = "invalid_request"
    challenge = True


class InsufficientScope(Refusal):
    """A valid token without the scopes the tool needs."""

    status = 403
    error = "insufficient_scope"
    challenge = True


class VerifierUnavailable(Refusal):
    """The token could not be checked (JWKS or introspection unreachable): refuse, never let through."""

    status = 503
    error = "temporarily_unavailable"
    retry_after = "5"


class RateLimited(Refusal):
    """MCP tools: servers MUST rate-limit tool invocations. Over budget: 429 with ``Retry-After``."""

    status = 429
    error = "rate_limited"


class MalformedRequest(Refusal):
    status = 400
    error = "invalid_request"


class JsonRpcRefusal(MalformedRequest):
    """A body the MCP endpoint cannot route, answered as a JSON-RPC error object."""

    def __init__(self, description: str, *, code: int) -> None:
        super().__init__(description)
        self.code = code


PARSE_ERROR = -32700  # JSON-RPC 2.0 §5.1
INVALID_REQUEST = -32600
HEADER_MISMATCH = -32020  # MCP 2026-07-28 Streamable HTTP: Mcp-Name / Mcp-Method disagree with the body


class InvalidArguments(Refusal):
    """A tool's arguments broke its schema or limits: answered as a tool error (the server is fine)."""

    error = "invalid_arguments"

    def __init__(self, description: str, *, field: str, rule: str) -> None:
        super().__init__(description)
        self.field = field
        self.rule = rule


class UnknownSession(Refusal):
    """An MCP session that belongs to another principal is answered as if it did not exist."""

    status = 404
    error = "session_not_found"


class PayloadTooLarge(Refusal):
    status = 413
    error = "request_too_large"


class RequestTimeout(Refusal):
    """The request head or body arrived too slowly (slow-loris protection); the connection is closed."""

    status = 408
    error = "request_timeout"


class UriTooLong(Refusal):
    status = 414
    error = "uri_too_long"


class HeadersTooLarge(Refusal):
    status = 431
    error = "request_header_fields_too_large"


class MisdirectedHost(Refusal):
    """DNS-rebinding protection: the Host header names a host this server does not serve."""

    status = 421
    error = "invalid_host"


class ForbiddenOrigin(Refusal):
    """DNS-rebinding protection: a browser page from another origin."""

    status = 403
    error = "invalid_origin"


# RFC 6750 §3: error_description uses %x20-21 / %x23-5B / %x5D-7E only.
_UNSAFE_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def bearer_challenge(refusal: Refusal, resource_metadata_url: str) -> str:
    """The ``WWW-Authenticate`` value for an auth refusal (RFC 6750 §3, RFC 9728 §5.1)."""
    params: list[tuple[str, str]] = []
    if refusal.error:
        params.append(("error", refusal.error))
        params.append(("error_description", _UNSAFE_DESCRIPTION.sub("", refusal.description)))
    if refusal.scopes:
        params.append(("scope", " ".join(refusal.scopes)))
    params.append(("resource_metadata", resource_metadata_url))
    return "Bearer " + ", ".join(f'{name}="{value}"' for name, value in params)


def tool_result_challenge(refusal: Refusal, resource_metadata_url: str) -> dict[str, list[str]]:
    """The Apps SDK form of an auth refusal, for a tool result's ``_meta``: ``mcp/www_authenticate``.

    The challenge always carries ``error`` and ``error_description`` (Apps SDK auth guide): a
    missing token is named ``invalid_token`` there, since ChatGPT needs an error code to start linking.
    """
    if not refusal.error:
        refusal = InvalidToken(refusal.description, scopes=refusal.scopes)
    return {"mcp/www_authenticate": [bearer_challenge(refusal, resource_metadata_url)]}


def http_answer(refusal: Refusal, resource_metadata_url: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and JSON body for a refusal answered at the HTTP layer."""
    if isinstance(refusal, JsonRpcRefusal):
        body: dict = {"jsonrpc": "2.0", "id": None, "error": {"code": refusal.code, "message": refusal.description}}
    else:
        body = {"error": refusal.error or "unauthorized", "error_description": refusal.description}
    headers = [
        (b"content-type", b"application/json"),
        (b"cache-control", b"no-store"),
    ]
    if refusal.challenge:
        headers.append((b"www-authenticate", bearer_challenge(refusal, resource_metadata_url).encode()))
    if refusal.retry_after is not None:
        headers.append((b"retry-after", refusal.retry_after.encode()))
    return refusal.status, headers, json.dumps(body).encode()
