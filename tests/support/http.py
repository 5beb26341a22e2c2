"""Reading ringfence's answers: Bearer challenges, JSON-RPC messages (JSON or SSE), leak checks."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from tests.support.serve import REPO

# RFC 7235 §2.1 auth-param with a quoted-string value; ringfence quotes every value.
_AUTH_PARAM = re.compile(r'\s*([A-Za-z0-9_!#$%&\'*+.^`|~-]+)="((?:[^"\\]|\\.)*)"\s*(,|$)')
# A path to a Python source file, a stack trace, or the repository / virtualenv location.
_INTERNALS = re.compile(r'Traceback|File "|site-packages|\w\.py\b|' + re.escape(str(REPO)))


def parse_bearer_challenge(value: str) -> dict[str, str]:
    """The parameters of one RFC 6750 §3 ``Bearer`` challenge, e.g. ``{"error": "invalid_token", ...}``.

    Fails on another scheme, an unquoted or repeated parameter, or trailing garbage.
    """
    scheme, _, rest = value.partition(" ")
    assert scheme == "Bearer", f"not a Bearer challenge: {value!r}"
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _AUTH_PARAM.match(rest, position)
        assert match is not None, f"unparseable challenge {value!r} at {rest[position:]!r}"
        name = match.group(1)
        assert name not in params, f"parameter {name!r} repeated in {value!r}"
        params[name] = re.sub(r"\\(.)", r"\1", match.group(2))
        position = match.end()
    return params


def challenge(response: httpx.Response) -> dict[str, str]:
    """The response's single ``WWW-Authenticate: Bearer`` challenge, parsed."""
    values = response.headers.get_list("www-authenticate")
    assert len(values) == 1, f"expected exactly one WWW-Authenticate header, got {values}"
    return parse_bearer_challenge(values[0])


def jsonrpc_message(response: httpx.Response) -> dict[str, Any]:
    """The one JSON-RPC response in an answer sent as ``application/json`` or as an SSE stream."""
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("text/event-stream"):
        events = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
        answers = [event for event in events if "result" in event or "error" in event]
        assert len(answers) == 1, f"expected one JSON-RPC answer in the stream, got {events}"
        return answers[0]
    assert content_type.startswith("application/json"), f"unexpected content type {content_type!r}"
    return response.json()


def tool_result(response: httpx.Response) -> dict[str, Any]:
    """The ``result`` of a successful (HTTP 200) JSON-RPC answer, e.g. a ``CallToolResult``."""
    assert response.status_code == 200, f"HTTP {response.status_code}: {response.text}"
    message = jsonrpc_message(response)
    assert "result" in message, f"not a result: {message}"
    return message["result"]


def result_text(result: dict[str, Any]) -> str:
    return "\n".join(block["text"] for block in result["content"] if block.get("type") == "text")


def assert_no_internals(response: httpx.Response) -> None:
    """No stack trace, source file or install path in what the client sees (OWASP: error handling)."""
    leak = _INTERNALS.search(response.text)
    assert leak is None, f"response leaks {leak.group(0)!r}: {response.text[:500]}"
