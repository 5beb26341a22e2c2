"""MCP over Streamable HTTP as the scanner speaks it: the 2025-11-25 handshake, which every server
of either era answers (a 2026-07-28 server also serves handshake-era clients), then single requests."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ringfence.jsonrpc import jsonrpc_response
from ringfence.review.scan.probe import Exchange, Probe

PROTOCOL_VERSION = "2025-11-25"
MCP_ACCEPT = "application/json, text/event-stream"
CLIENT_INFO = {"name": "ringfence-scan", "version": "1"}
# What ChatGPT sends with each call: servers answer refusals in the Apps SDK form for these.
OPENAI_META = {"openai/locale": "en-US", "openai/userAgent": "ringfence-scan"}


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange and the JSON-RPC message in it (None when there is none)."""

    exchange: Exchange
    message: dict[str, Any] | None

    @property
    def result(self) -> dict[str, Any] | None:
        result = (self.message or {}).get("result")
        return result if isinstance(result, dict) else None

    @property
    def error(self) -> dict[str, Any] | None:
        error = (self.message or {}).get("error")
        return error if isinstance(error, dict) else None


def message_of(exchange: Exchange) -> dict[str, Any] | None:
    """The JSON-RPC response in a JSON body or in an SSE stream's ``data:`` lines."""
    return jsonrpc_response(exchange.header("content-type"), exchange.text)


class McpSession:
    """A handshake-era session with one server, with or without a bearer token."""

    def __init__(self, probe: Probe, url: str, token: str | None = None, *,
                 query: dict[str, str] | None = None) -> None:
        self.probe = probe
        self.url = url
        self.token = token
        self.query = query  # only to show that a token there is ignored
        self.session_id: str | None = None
        self.initialized: Answer | None = None
        self._next_id = 1

    def headers(self, **extra: str) -> dict[str, str]:
        headers = {"accept": MCP_ACCEPT, "content-type": "application/json", **extra}
        if self.token is not None:
            headers["authorization"] = f"Bearer {self.token}"
        if self.session_id:
            headers["mcp-session-id"] = self.session_id
        if self.initialized is not None:
            headers["mcp-protocol-version"] = PROTOCOL_VERSION
        return headers

    def initialize_request(self, *, headers: dict[str, str] | None = None) -> Answer:
        """The ``initialize`` request alone (``headers`` added), without taking up the session it opens."""
        return self.send("initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                        "clientInfo": CLIENT_INFO}, headers=headers)

    def initialize(self) -> Answer:
        answer = self.initialize_request()
        if answer.result is not None:
            self.initialized = answer
            self.session_id = answer.exchange.header("mcp-session-id") or None
            self.probe.request("POST", self.url, headers=self.headers(), params=self.query,
                               json_body={"jsonrpc": "2.0", "method": "notifications/initialized"})
        return answer

    def send(self, method: str, params: dict[str, Any], *, headers: dict[str, str] | None = None) -> Answer:
        message_id, self._next_id = self._next_id, self._next_id + 1
        body = {"jsonrpc": "2.0", "id": message_id, "method": method, "params": params}
        exchange = self.probe.request("POST", self.url, headers={**self.headers(), **(headers or {})}, json_body=body,
                                      params=self.query)
        return Answer(exchange, message_of(exchange))

    def call_tool(self, name: str, arguments: dict[str, Any], *, as_chatgpt: bool = False) -> Answer:
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        if as_chatgpt:
            params["_meta"] = OPENAI_META
        return self.send("tools/call", params)

    def list_tools(self, max_pages: int = 10) -> list[dict[str, Any]]:
        """Every tool, following pagination cursors (bounded)."""
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(max_pages):
            result = self.send("tools/list", {"cursor": cursor} if cursor else {}).result or {}
            tools += [tool for tool in result.get("tools", []) if isinstance(tool, dict)]
            cursor = result.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                break
        return tools


_PARAMETER = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def challenge_parameters(challenge: str) -> dict[str, str]:
    """The auth-params of a ``Bearer`` challenge (RFC 6750 §3), lower-cased names; {} when it is not Bearer."""
    scheme, _, rest = challenge.strip().partition(" ")
    if scheme.lower() != "bearer":
        return {}
    return {name.lower(): quoted if quoted or not bare else bare for name, quoted, bare in _PARAMETER.findall(rest)}
