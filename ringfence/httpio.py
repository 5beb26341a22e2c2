"""Small pure-ASGI helpers shared by the request-path units."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from ringfence.refusals import PayloadTooLarge, Refusal, http_answer

# Where ops/limits.py leaves the request body it read and bounded, for the route to take (read once).
BODY_SCOPE_KEY = "ringfence.body"


def header(scope: Scope, name: bytes) -> list[bytes]:
    """Every value of one request header (lower-case ``name``)."""
    return [value for key, value in scope.get("headers", ()) if key == name]


async def send_response(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, document: Any, extra: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps(document, separators=(",", ":")).encode()
    await send_response(send, status, [(b"content-type", b"application/json"), *extra], body)


async def send_refusal(send: Send, refusal: Refusal, resource_metadata_url: str) -> None:
    status, headers, body = http_answer(refusal, resource_metadata_url)
    await send_response(send, status, headers, body)


async def send_tool_error(send: Send, request_id: Any, message: str, meta: dict[str, Any] | None = None, *,
                          modern: bool) -> None:
    """A JSON-RPC ``tools/call`` result with ``isError``: the call was refused, the server is fine."""
    result: dict[str, Any] = {"content": [{"type": "text", "text": message}], "isError": True}
    if modern:
        result["resultType"] = "complete"  # MCP 2026-07-28: every result says whether it is complete
    if meta:
        result["_meta"] = meta
    await send_json(send, 200, {"jsonrpc": "2.0", "id": request_id, "result": result})


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body, refused with 413 past ``limit`` bytes (checked before reading too)."""
    for value in header(scope, b"content-length"):
        if not value.isdigit() or int(value) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the already-read body once, then defers to the real one."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
