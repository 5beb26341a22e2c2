"""Fuzzing ``/mcp`` in both protocol eras: no 5xx, no internals, no secret echoed, whatever is sent.

2026-07-28 requests are stateless (``_meta`` and routing headers); 2025-11-25 requests run inside
sessions opened with ``initialize`` (an anonymous one, the writer's and the reader's), named by
``Mcp-Session-Id``. Most requests carry the owner's real token, so tools really run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.json_values import dumps
from tests.fuzz.mcp_requests import SESSION_KINDS, McpStrategies
from tests.fuzz.target import FuzzTarget
from tests.fuzz.wire import BATCH, Headers, Request, Wire, fuzz_settings
from tests.support.serve import LEGACY_VERSION, MCP_ACCEPT

MODERN = "/mcp 2026-07-28"
HANDSHAKE = "/mcp 2025-11-25"


@pytest.fixture(scope="module")
def strategies(target: FuzzTarget) -> McpStrategies:
    return McpStrategies(target)


@given(data=st.data())
@fuzz_settings(3000)
def test_stateless_requests_get_no_5xx_internals_or_secrets(wire: Wire, strategies: McpStrategies,
                                                             data: st.DataObject) -> None:
    """MCP 2026-07-28 requests of every method, tool and shape: the server answers each one cleanly."""
    with wire.batch() as send:
        for _ in range(BATCH):
            send(MODERN, data.draw(strategies.modern, label="request"))


# 2025-11-25: sessions ------------------------------------------------------------------------------


class Sessions:
    """The handshake-era sessions the fuzzer uses, opened again when a fuzzed DELETE ends one."""

    def __init__(self, target: FuzzTarget, wire: Wire) -> None:
        self.target = target
        self.wire = wire
        self.tokens = {"anonymous": None, "writer": target.writer, "reader": target.reader}
        self.ids = {kind: self.open(kind) for kind in SESSION_KINDS}

    def open(self, kind: str) -> str:
        token = self.tokens[kind]
        auth: Headers = [("authorization", f"Bearer {token}")] if token else []
        base: Headers = [("content-type", "application/json"), ("accept", MCP_ACCEPT), *auth]
        initialize = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
                      "params": {"protocolVersion": LEGACY_VERSION, "capabilities": {},
                                 "clientInfo": {"name": "fuzz", "version": "0"}}}
        answer = self.wire.send(HANDSHAKE, Request("POST", "/mcp", base, dumps(initialize)))
        session = answer.headers["mcp-session-id"]
        routed: Headers = [*base, ("mcp-session-id", session), ("mcp-protocol-version", LEGACY_VERSION)]
        initialized = dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert self.wire.send(HANDSHAKE, Request("POST", "/mcp", routed, initialized)).status_code == 202
        return session

    def header(self, kind: str) -> Headers:
        if kind in self.ids:
            return [("mcp-session-id", self.ids[kind])]
        return {"none": [], "unknown": [("mcp-session-id", "0" * 32)],
                "odd": [("mcp-session-id", "../" + "\u00e9".encode().hex())]}[kind]

    def after(self, kind: str, request: Request) -> Callable[[httpx.Response], None]:
        """What to do with the answer: a session a DELETE ended is opened again."""

        def renew(answer: httpx.Response) -> None:
            if request.method == "DELETE" and answer.status_code < 300 and kind in self.ids:
                self.ids[kind] = self.open(kind)

        return renew


@pytest.fixture(scope="module")
def sessions(target: FuzzTarget, wire: Wire) -> Iterator[Sessions]:
    yield Sessions(target, wire)


@given(data=st.data())
@fuzz_settings(2000)
def test_session_requests_get_no_5xx_internals_or_secrets(wire: Wire, sessions: Sessions,
                                                          strategies: McpStrategies, data: st.DataObject) -> None:
    """MCP 2025-11-25 requests inside real sessions, others' sessions, unknown ones, or none."""
    with wire.batch() as send:
        for _ in range(BATCH):
            kind, request = data.draw(strategies.handshake, label="session kind, request")
            sent = Request(request.method, request.url, [*sessions.header(kind), *request.headers], request.content,
                           request.head_only)
            send(HANDSHAKE, sent, then=sessions.after(kind, request))


# The endpoint itself ------------------------------------------------------------------------------


@given(data=st.data())
@fuzz_settings(300)
def test_other_http_methods_and_query_strings_get_no_5xx(wire: Wire, strategies: McpStrategies,
                                                          data: st.DataObject) -> None:
    """Any verb, any query string (``access_token`` among them), CORS preflights: a clean answer."""
    with wire.batch() as send:
        for _ in range(BATCH):
            send("/mcp methods", data.draw(strategies.other_verbs, label="request"))
