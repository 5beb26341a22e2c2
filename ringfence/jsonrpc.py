"""The JSON-RPC response in an MCP Streamable HTTP answer: a JSON body, or the ``data:`` lines of an SSE
stream (MCP transports, Streamable HTTP). One reader for every client ringfence has (scan, preview, qa)."""

from __future__ import annotations

import json
from typing import Any


def jsonrpc_response(content_type: str, body: str) -> dict[str, Any] | None:
    """The first response (a message with ``result`` or ``error``) in the answer, or None when there is none."""
    if content_type.startswith("text/event-stream"):
        for line in body.splitlines():
            if not line.startswith("data:"):
                continue
            try:
                event = json.loads(line[5:])
            except ValueError:
                continue
            if isinstance(event, dict) and ("result" in event or "error" in event):
                return event
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None
