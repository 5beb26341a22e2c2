"""Bounded requests on every route: URL (414), headers (431), body size (413) and body time (408).

The body is read here, once, within ``body_timeout_seconds`` and the route's size limit, then
replayed to the route and left in the scope under ``BODY_SCOPE_KEY`` for the MCP gate: a slow or
endless upload ties up nothing past the bound, and every form,
registration and MCP message is covered by the same check. Heads that never finish are cut off
earlier, by the HTTP protocol (ops/protocol.py).
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from ringfence.config import MAX_FORM_BYTES, MCP_PATH
from ringfence.httpio import BODY_SCOPE_KEY, header, read_body, replay, send_response
from ringfence.refusals import HeadersTooLarge, PayloadTooLarge, Refusal, RequestTimeout, UriTooLong, http_answer

MAX_HEADER_COUNT = 100


class RequestLimits:
    """``max_body_bytes`` bounds an MCP message (every other route: ``MAX_FORM_BYTES``); ``metadata_url``
    is named in the refusals' challenge."""

    def __init__(self, app: ASGIApp, *, max_url_bytes: int, max_header_bytes: int, max_body_bytes: int,
                 body_timeout_seconds: float, metadata_url: str) -> None:
        self.app = app
        self.max_url_bytes = max_url_bytes
        self.max_header_bytes = max_header_bytes
        self.max_mcp_body = max_body_bytes
        self.body_timeout = body_timeout_seconds
        self.metadata_url = metadata_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self.check_head(scope)
            limit = self.max_mcp_body if scope["path"] == MCP_PATH else MAX_FORM_BYTES
            body = await self.read_body(scope, receive, limit)
        except Refusal as refusal:
            status, headers, answer = http_answer(refusal, self.metadata_url)
            # The rest of the body is not read: close the connection rather than drain it.
            await send_response(send, status, [*headers, (b"connection", b"close")], answer)
            return
        scope[BODY_SCOPE_KEY] = body
        await self.app(scope, replay(body, receive), send)

    def check_head(self, scope: Scope) -> None:
        url_bytes = len(scope.get("raw_path") or scope["path"].encode()) + 1 + len(scope.get("query_string", b""))
        if url_bytes > self.max_url_bytes:
            raise UriTooLong(f"The URL is longer than {self.max_url_bytes} bytes; send large parameters in the "
                             "request body instead.")
        headers = scope.get("headers", ())
        size = sum(len(name) + len(value) + 4 for name, value in headers)
        if len(headers) > MAX_HEADER_COUNT or size > self.max_header_bytes:
            raise HeadersTooLarge(f"The request headers are larger than {self.max_header_bytes} bytes or more "
                                  f"than {MAX_HEADER_COUNT}; send fewer or smaller headers.")

    async def read_body(self, scope: Scope, receive: Receive, limit: int) -> bytes:
        if header(scope, b"content-length") == [] and header(scope, b"transfer-encoding") == []:
            return b""  # RFC 9112 §6.3: no framing headers, no body (a GET, or an empty POST)
        try:
            async with asyncio.timeout(self.body_timeout):  # uvicorn runs asyncio: its timeout costs half anyio's
                return await read_body(scope, receive, limit)
        except PayloadTooLarge:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes; send a smaller one.") from None
        except TimeoutError:
            raise RequestTimeout(f"The request body did not arrive within {self.body_timeout:g} seconds; send it "
                                 "again in one go.") from None
