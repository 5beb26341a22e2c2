"""Request IDs: one per HTTP request, on every log line and audit record of that request and in its response.

Pure ASGI and outermost, so that every answer (a 421 from the host check included) carries one.
The request's ``Mcp-Session-Id`` goes to its audit records too, hashed (audit/correlation.py).
"""

from __future__ import annotations

import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ringfence.audit import correlation
from ringfence.audit.records import REQUEST_ID_PATTERN
from ringfence.detect.redactor import Redactor
from ringfence.logs.context import bind_request_id, unbind

SESSION_HEADER = b"mcp-session-id"

HEADER = b"x-request-id"


def accepted_request_id(values: list[bytes], redactor: Redactor) -> str | None:
    """The inbound ``X-Request-ID`` when there is exactly one, well-formed, holding no personal data."""
    if len(values) != 1:
        return None
    try:
        candidate = values[0].decode("ascii")
    except UnicodeDecodeError:
        return None
    if not REQUEST_ID_PATTERN.fullmatch(candidate) or redactor.find(candidate):  # the form audit records keep
        return None  # e.g. a card number or an IP address as an "ID": it would be logged as is
    return candidate


def single_header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The value of header ``name`` when it is sent exactly once, as ASCII; else ``None``."""
    values = [value for key, value in headers if key.lower() == name]
    if len(values) != 1:
        return None
    try:
        return values[0].decode("ascii")
    except UnicodeDecodeError:
        return None


class RequestIdMiddleware:
    """Keeps a well-formed inbound ``X-Request-ID`` (else makes one), binds it for the log lines and
    audit records of the request (with its ``Mcp-Session-Id``), and returns it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.redactor = Redactor()  # only asks whether an inbound ID holds personal data

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", ())
        inbound = [value for name, value in headers if name.lower() == HEADER]
        request_id = accepted_request_id(inbound, self.redactor) or uuid.uuid4().hex
        encoded = request_id.encode("ascii")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(name, value) for name, value in message.get("headers", ()) if name.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, encoded)]}
            await send(message)

        token = bind_request_id(request_id)
        correlated = correlation.bind_request(request_id, single_header(headers, SESSION_HEADER))
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            correlation.unbind(correlated)
            unbind(token)
