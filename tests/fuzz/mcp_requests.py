"""Requests to ``/mcp`` in both protocol eras, most of them nearly right, some of them not at all.

Every client method and notification of the MCP SDK (``mcp_types.methods``) and made-up ones; every
tool of the app with arguments shaped by its own ``inputSchema`` (as ``tools/list`` declares it)
or shaped wrongly; real and broken bearer tokens; routing headers that agree with the body or not.

Strategies are built once per server (:class:`McpStrategies`) and only drawn from afterwards:
Hypothesis validates every new strategy object, which would cost more than the request.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st
from mcp_types.methods import SPEC_CLIENT_METHODS, SPEC_CLIENT_NOTIFICATION_METHODS

from tests.fuzz.json_values import CANARY, MOSTLY_INTACT, SCALARS, SECRET_TEXT, TEXT, VALUES, bodies, dumps, weighted
from tests.fuzz.target import FuzzTarget
from tests.fuzz.wire import Headers, Request
from tests.support.serve import LEGACY_VERSION, MCP_ACCEPT, MODERN_VERSION

METHODS = sorted(SPEC_CLIENT_METHODS)
NOTIFICATIONS = sorted(SPEC_CLIENT_NOTIFICATION_METHODS)
STREAMING_METHODS = {"subscriptions/listen"}  # its answer is an event stream that stays open
VERSIONS = [MODERN_VERSION, LEGACY_VERSION, "2025-06-18", "2025-03-26", "2024-11-05", "2099-01-01", "", "latest"]
SESSION_KINDS = ("anonymous", "writer", "reader")  # the handshake-era sessions the suite keeps open


# Tool arguments ------------------------------------------------------------------------------------


def schema_values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values a JSON Schema of the shape pydantic writes for tool signatures accepts (or should)."""
    if "anyOf" in schema:
        return st.one_of([schema_values(option) for option in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", 60)
        return st.one_of(st.text(min_size=low, max_size=high),
                         st.text(st.characters(codec="ascii", categories=("L", "N", "P", "Zs")), min_size=low,
                                 max_size=min(high, 40)))
    if kind == "integer":
        return st.one_of(st.integers(0, 60), st.integers(), st.sampled_from([2**63, -(2**63) - 1, 10**30]))
    if kind == "null":
        return st.none()
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {name: schema_values(properties[name]) for name in properties if name in required},
            optional={name: schema_values(properties[name]) for name in properties if name not in required},
        )
    return VALUES


def wrong_arguments(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Arguments of the wrong shape: another type, a stray field, a field of the wrong type, one missing."""
    valid = schema_values(schema)
    names = st.sampled_from(list(schema.get("properties", {})) or ["x"])
    return st.one_of(
        VALUES,
        st.tuples(valid, TEXT, VALUES).map(lambda t: {**t[0], t[1]: t[2]}),
        st.tuples(valid, names, VALUES).map(lambda t: {**t[0], t[1]: t[2]}),
        st.tuples(valid, names).map(lambda t: {k: v for k, v in t[0].items() if k != t[1]}),
    )


def tool_calls(schemas: dict[str, dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """``tools/call`` params for every declared tool (arguments right or wrong) and unknown tools."""
    declared = [
        st.tuples(st.just(name), weighted((3, schema_values(schema)), (1, wrong_arguments(schema)), (1, st.none())))
        for name, schema in sorted(schemas.items())
    ]
    unknown = st.tuples(st.one_of(TEXT, st.sampled_from(["APP_INFO", "app_info ", "tools/call"])), VALUES)
    return st.one_of(*declared, unknown).map(lambda pair: {"name": pair[0], "arguments": pair[1]})


# Tokens and headers --------------------------------------------------------------------------------


def _b64(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def broken_tokens(real: str) -> list[str]:
    """Tokens a verifier must refuse: tampered, truncated, unsigned, HMAC, oversized, not a JWT."""
    header, claims, signature = real.split(".")
    flipped = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")
    unsigned = f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{claims}."
    hmac_signed = f"{_b64({'alg': 'HS256', 'typ': 'at+jwt', 'kid': 'x'})}.{claims}.{signature}"
    return [f"{header}.{claims}.{flipped}", real[:-1], real + "A", unsigned, hmac_signed, "a.b.c", "x" * 9000,
            f"{header}.{claims}", f"{header}..{signature}", "eyJ" * 30, CANARY + "abcdef"]


def authorization(target: FuzzTarget) -> st.SearchStrategy[Headers]:
    """``Authorization`` headers: mostly a real token, sometimes none, a broken one, or odd ones."""
    bearer = st.sampled_from([target.writer, target.writer, target.reader]).map(
        lambda token: [("authorization", f"Bearer {token}")])
    broken = st.sampled_from(broken_tokens(target.writer)).map(lambda token: [("authorization", f"Bearer {token}")])
    made_up = SECRET_TEXT.map(lambda token: [("authorization", f"Bearer {token}")])
    odd = st.sampled_from([
        [("authorization", "Bearer")], [("authorization", "bearer  a.b.c")], [("authorization", "Basic dXNlcjpwYXNz")],
        [("authorization", "")], [("authorization", b"Bearer \xff\xfe")],
        [("authorization", f"Bearer {target.writer}"), ("authorization", f"Bearer {target.reader}")],
        [("authorization", f"Bearer {target.writer}, Bearer x")], [("authorization", f"DPoP {target.writer}")],
    ])
    return weighted((6, bearer), (2, st.just([])), (1, broken), (1, made_up), (1, odd))


# Header values an HTTP/1.1 client can send (RFC 9110 §5.5): visible ASCII, inner spaces, obs-text.
# What no client library sends (bare CR or LF, NUL, a repeated Host, odd framing) needs a raw
# socket: not fuzzed here.
HEADER_TEXT = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(str.strip),
    st.binary(max_size=20).map(lambda raw: bytes(c for c in raw if c >= 0x80 or 0x21 <= c < 0x7F)),
)


def transport_headers(target: FuzzTarget) -> st.SearchStrategy[Headers]:
    """Accept, Content-Type, Origin and Host: mostly right, sometimes odd, foreign, missing or repeated."""
    accept = weighted((6, st.just([("accept", MCP_ACCEPT)])),
                      (1, st.sampled_from([[], [("accept", "application/json")], [("accept", "text/event-stream")],
                                           [("accept", "*/*")], [("accept", "text/html")]])),
                      (1, HEADER_TEXT.map(lambda value: [("accept", value)])))
    content_type = weighted((6, st.just([("content-type", "application/json")])),
                            (1, st.sampled_from([[], [("content-type", "application/json; charset=utf-16")],
                                                 [("content-type", "text/plain")],
                                                 [("content-type", "application/x-www-form-urlencoded")],
                                                 [("content-type", "application/json"),
                                                  ("content-type", "text/xml")]])),
                            (1, HEADER_TEXT.map(lambda value: [("content-type", value)])))
    origin = weighted((14, st.just([])),
                      (1, st.sampled_from([[("origin", target.base_url)], [("origin", "null")],
                                           [("origin", "https://evil.example")], [("origin", "http://127.0.0.1:1")]])),
                      (1, HEADER_TEXT.map(lambda value: [("origin", value)])))
    host = weighted((18, st.just([])),
                    (1, st.sampled_from([[("host", "evil.example")], [("host", target.host + ".evil.example")],
                                         [("host", "")]])),
                    (1, HEADER_TEXT.map(lambda value: [("host", value)])))
    names = ["x-forwarded-for", "forwarded", "x-real-ip", "cookie", "mcp-session-id", "last-event-id",
             "x-request-id", "expect", "x-" + "a" * 50]
    extra = weighted((4, st.just([])), (1, st.lists(st.tuples(st.sampled_from(names), HEADER_TEXT), max_size=3)))
    return st.tuples(accept, content_type, origin, host, extra).map(
        lambda parts: [header for part in parts for header in part])


def sendable(value: str | None) -> bool:
    """Whether a header can carry ``value`` as it is (RFC 9110 §5.5); a value that cannot goes without."""
    return value is not None and value.isascii() and value.isprintable() and value == value.strip()


# Messages ------------------------------------------------------------------------------------------

_MODERN_META = {"io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
                "io.modelcontextprotocol/clientInfo": {"name": "fuzz", "version": "0"},
                "io.modelcontextprotocol/clientCapabilities": {}}
_META_VARIANTS = st.sampled_from([
    {},
    {"io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}}},
    {"openai/userAgent": "ChatGPT/1.0", "openai/locale": "en-US", "openai/subject": "anon-1"},
    {"io.modelcontextprotocol/protocolVersion": "2099-01-01"},
    {"io.modelcontextprotocol/clientInfo": None},
    {"progressToken": 7},
])
# 2026-07-28 ``_meta``: the client's version, info and capabilities, right, odd, or ChatGPT's.
_RIGHT_META = _META_VARIANTS.map(lambda extra: {**_MODERN_META, **extra})
MODERN_META = weighted(
    (2, _RIGHT_META),
    (1, st.tuples(_META_VARIANTS, st.dictionaries(st.one_of(st.sampled_from(sorted(_MODERN_META)), TEXT), VALUES,
                                                  max_size=3)).map(lambda t: {**_MODERN_META, **t[0], **t[1]})),
    (1, VALUES),
)
HANDSHAKE_META = weighted((4, st.none()), (1, VALUES))

_INITIALIZE = st.fixed_dictionaries({
    "protocolVersion": st.sampled_from(VERSIONS),
    "capabilities": st.one_of(st.just({}), VALUES),
    "clientInfo": st.one_of(st.just({"name": "fuzz", "version": "0"}), VALUES),
})
_OTHER_PARAMS = st.one_of(st.just({}), st.fixed_dictionaries({}, optional={
    "cursor": TEXT, "uri": TEXT, "name": TEXT, "level": st.sampled_from(["debug", "info", "emergency", "nope"]),
    "arguments": VALUES, "requestId": SCALARS, "progressToken": SCALARS, "progress": SCALARS,
}))
_ENVELOPES = st.sampled_from(["as is"] * 16 + ["jsonrpc", "params", "drop", "response", "batch"])
_IDS = weighted((2, st.integers(0, 1000)), (1, SCALARS))


@dataclass(frozen=True)
class Message:
    """A JSON-RPC message and the routing facts its headers may repeat."""

    body: Any
    method: str | None
    tool: str | None


def messages(schemas: dict[str, dict[str, Any]], meta: st.SearchStrategy[Any]) -> st.SearchStrategy[Message]:
    """Requests for every method (tools/call most), notifications, responses, and odd envelopes."""
    method = weighted((3, st.just("tools/call")), (1, st.sampled_from(METHODS)), (1, st.sampled_from(NOTIFICATIONS)),
                      (1, TEXT))
    calls = tool_calls(schemas)

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        name = draw(method)
        params = dict(draw({"tools/call": calls, "initialize": _INITIALIZE}.get(name, _OTHER_PARAMS)))
        attached = draw(meta)
        if attached is not None:
            params["_meta"] = attached
        body: Any = {"jsonrpc": "2.0", "method": name, "params": params}
        if not name.startswith("notifications/") or draw(st.booleans()):
            body["id"] = draw(_IDS)
        envelope = draw(_ENVELOPES)
        if envelope == "jsonrpc":
            body["jsonrpc"] = draw(SCALARS)
        elif envelope == "params":
            body["params"] = draw(VALUES)
        elif envelope == "drop":
            body.pop(draw(st.sampled_from(sorted(body))))
        elif envelope == "response":
            body = {"jsonrpc": "2.0", "id": body.get("id", 1), draw(st.sampled_from(["result", "error"])): draw(VALUES)}
        elif envelope == "batch":
            body = [body] * draw(st.integers(1, 3))
        tool = params.get("name") if name == "tools/call" and isinstance(params.get("name"), str) else None
        return Message(body, name, tool)

    return build()


_ODD_ROUTING = st.lists(st.tuples(st.sampled_from(["mcp-protocol-version", "mcp-method", "mcp-name"]),
                                  st.one_of(st.sampled_from([*VERSIONS, "tools/call", "app_info", "delete_contact"]),
                                            HEADER_TEXT)), max_size=3)
_ROUTING = st.sampled_from(["agreeing"] * 8 + ["version and odd", "odd"])


def routing(message: Message, era: str, how: str, odd: Headers) -> Headers:
    """``Mcp-Protocol-Version``, ``Mcp-Method`` and ``Mcp-Name``: agreeing with the body, or ``odd``."""
    version: Headers = [("mcp-protocol-version", MODERN_VERSION if era == "modern" else LEGACY_VERSION)]
    if how == "odd":
        return odd
    if how == "version and odd":
        return [*version, *odd]
    agreeing = version
    if era == "modern" and sendable(message.method):
        agreeing = [*agreeing, ("mcp-method", message.method)]
        if sendable(message.tool):
            agreeing = [*agreeing, ("mcp-name", message.tool)]
    return agreeing


def post(message: Message, headers: Headers, content: bytes) -> Request:
    return Request("POST", "/mcp", headers, content, head_only=message.method in STREAMING_METHODS)


_SESSION_CHOICES = st.sampled_from([*SESSION_KINDS, *SESSION_KINDS, "none", "unknown", "odd"])
_HANDSHAKE_VERBS = st.sampled_from(["POST"] * 12 + ["GET", "DELETE"])
_OTHER_VERBS = st.sampled_from(["PUT", "PATCH", "OPTIONS", "HEAD", "TRACE", "GET", "DELETE", "POST"])
_QUERIES = st.one_of(st.just(""), st.sampled_from(["?a=1&a=2", "?%ff", "?session_id=x"]),
                     st.text(max_size=30).map(lambda text: "?" + quote(text, safe="=&%+;/?")))
_OPTIONAL_BODIES = st.one_of(st.none(), bodies(VALUES))


class McpStrategies:
    """The request strategies for one server, built once."""

    def __init__(self, target: FuzzTarget) -> None:
        self.target = target
        self.authorization = authorization(target)
        self.transport = transport_headers(target)
        self.modern_messages = messages(target.tool_schemas, MODERN_META)
        self.handshake_messages = messages(target.tool_schemas, HANDSHAKE_META)
        self.modern = self._modern()
        self.handshake = self._handshake()
        self.other_verbs = self._other_verbs()

    def _modern(self) -> st.SearchStrategy[Request]:
        @st.composite
        def build(draw: st.DrawFn) -> Request:
            message = draw(self.modern_messages)
            headers = [*routing(message, "modern", draw(_ROUTING), draw(_ODD_ROUTING)), *draw(self.authorization),
                       *draw(self.transport)]
            return post(message, headers, draw(MOSTLY_INTACT)(dumps(message.body)))

        return build()

    def _handshake(self) -> st.SearchStrategy[tuple[str, Request]]:
        """(session kind, request): mostly a session's own token with it, sometimes another or none."""
        own = {"writer": [("authorization", f"Bearer {self.target.writer}")],
               "reader": [("authorization", f"Bearer {self.target.reader}")]}

        @st.composite
        def build(draw: st.DrawFn) -> tuple[str, Request]:
            kind = draw(_SESSION_CHOICES)
            auth = own.get(kind, []) if draw(st.integers(0, 2)) else draw(self.authorization)
            headers: Headers = [*auth, *draw(self.transport)]
            verb = draw(_HANDSHAKE_VERBS)
            if verb != "POST":
                return kind, Request(verb, "/mcp", [*headers, ("mcp-protocol-version", LEGACY_VERSION)],
                                     head_only=True)
            message = draw(self.handshake_messages)
            headers += routing(message, "handshake", draw(_ROUTING), draw(_ODD_ROUTING))
            return kind, post(message, headers, draw(MOSTLY_INTACT)(dumps(message.body)))

        return build()

    def _other_verbs(self) -> st.SearchStrategy[Request]:
        """Any verb, any query string (``access_token`` among them), CORS preflights."""
        in_query = f"?access_token={self.target.writer}"

        @st.composite
        def build(draw: st.DrawFn) -> Request:
            verb = draw(_OTHER_VERBS)
            query = in_query if draw(st.integers(0, 9)) == 0 else draw(_QUERIES)
            headers = [*draw(self.authorization), *draw(self.transport)]
            if verb == "OPTIONS":
                headers += [("access-control-request-method", draw(st.sampled_from(["POST", "GET", "PUT", "x"]))),
                            ("access-control-request-headers", "authorization, mcp-session-id, x-odd")]
            return Request(verb, "/mcp" + query, headers, draw(_OPTIONAL_BODIES),
                           head_only=verb in ("GET", "TRACE"))

        return build()
