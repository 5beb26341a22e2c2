"""The MCP endpoint's gate: who is calling, and may they call this tool? Decided before the SDK runs.

Order, for every request to ``/mcp``:
1. bearer credentials taken only from the ``Authorization`` header (RFC 6750 §2.1), size-capped;
2. the body read (size-capped) and the JSON-RPC method and tool name found, from ``Mcp-Name`` on
   2026-era requests (cross-checked against the body) and from the body otherwise;
3. the token verified on every request, even for public methods (MCP: authorization on every request);
4. for ``tools/call`` of a protected tool, the scope check of :func:`ringfence.policy.authorize`,
   answered as HTTP 401/403 or, for clients that take it there, left to the tool wrapper, which
   returns the same refusal as a tool result carrying ``_meta["mcp/www_authenticate"]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ringfence.audit.records import EventKind
from ringfence.config import RefusalStyle, Settings
from ringfence.declaration import ToolSpec
from ringfence.events import Events, SecurityEvent, principal_label
from ringfence.guards.screening import ArgumentScreen, Screened
from ringfence.httpio import header, read_body, replay, send_refusal, send_tool_error
from ringfence.logs.context import bind_host_identifiers
from ringfence.ops.ratelimit import RateLimiter
from ringfence.ops.ratelimit_keys import RateLimits, keys_for
from ringfence.policy import ScopeCatalog, authorize
from ringfence.principal import Principal, bind_principal, unbind_principal
from ringfence.refusals import (
    HEADER_MISMATCH,
    INVALID_REQUEST,
    PARSE_ERROR,
    InvalidAuthorizationRequest,
    InvalidToken,
    JsonRpcRefusal,
    RateLimited,
    Refusal,
    UnknownSession,
)
from ringfence.resource.sessions import SessionOwners, owner_of
from ringfence.resource.tokens import TokenVerifier

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(rb"^[A-Za-z0-9\-._~+/]+=*$")
_BEARER = re.compile(rb"^[Bb][Ee][Aa][Rr][Ee][Rr] +(.*)$")
# RFC 6750 §2.2/§2.3 names; tokens there are refused, never read.
_TOKEN_PARAMETERS = frozenset({"access_token"})
_FALLBACK_STYLE_META_PREFIX = "openai/"


@dataclass(frozen=True)
class McpCall:
    """What the gate needs to know about one JSON-RPC message."""

    method: str | None
    tool: str | None
    meta: Mapping[str, Any]
    message: dict[str, Any] | None = None


def bearer_token(scope: Scope, max_bytes: int) -> str | None:
    """The bearer token from the ``Authorization`` header, or ``None`` when none was sent."""
    query = scope.get("query_string", b"").decode("latin-1")
    if any(name in _TOKEN_PARAMETERS for name, _ in parse_qsl(query, keep_blank_values=True)):
        # MCP authorization: "Access tokens MUST NOT be included in the URI query string".
        raise InvalidAuthorizationRequest("Send the access token in the Authorization header, not the URL.")
    values = header(scope, b"authorization")
    if not values:
        return None
    if len(values) > 1:
        raise InvalidAuthorizationRequest("Send exactly one Authorization header.")
    match = _BEARER.match(values[0])
    if match is None:
        return None  # another scheme: answered like no credentials, with our Bearer challenge
    raw = match.group(1).strip()
    if len(raw) > max_bytes:
        raise InvalidToken("The access token is too large.")
    if not _B64TOKEN.match(raw):
        raise InvalidAuthorizationRequest("The Authorization header is not a well-formed Bearer token.")
    return raw.decode("ascii")


def parse_call(body: bytes, scope: Scope) -> McpCall:
    """Find the JSON-RPC method and tool name; refuse bodies the SDK could be confused by."""
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise JsonRpcRefusal("The request body is not valid JSON.", code=PARSE_ERROR) from None
    if not isinstance(message, dict):
        # JSON-RPC batches were removed from MCP in 2025-06-18.
        raise JsonRpcRefusal("Send one JSON-RPC message per request.", code=INVALID_REQUEST)
    method = message.get("method")
    params = message.get("params")
    if method is not None and not isinstance(method, str):
        raise JsonRpcRefusal("The JSON-RPC method must be a string.", code=INVALID_REQUEST)
    if method is None and "result" not in message and "error" not in message:
        # JSON-RPC 2.0 §4/§5: a request or notification has a method, a response a result or an error.
        raise JsonRpcRefusal("The message is neither a JSON-RPC request nor a response.", code=INVALID_REQUEST)
    if params is not None and not isinstance(params, dict):
        raise JsonRpcRefusal("The JSON-RPC params must be an object.", code=INVALID_REQUEST)
    params = params or {}
    tool = None
    if method == "tools/call":
        tool = params.get("name")
        if not isinstance(tool, str):
            raise JsonRpcRefusal("tools/call needs a tool name.", code=INVALID_REQUEST)
    _check_routing_headers(scope, method, tool)
    meta = params.get("_meta")
    return McpCall(method=method, tool=tool, meta=meta if isinstance(meta, dict) else {}, message=message)


def _check_routing_headers(scope: Scope, method: str | None, tool: str | None) -> None:
    """MCP 2026-07-28: ``Mcp-Method`` and ``Mcp-Name`` must match the body, or 400 HeaderMismatch."""
    for name, expected in ((b"mcp-method", method), (b"mcp-name", tool)):
        values = header(scope, name)
        if values and (len(values) > 1 or values[0].decode("latin-1") != (expected or "")):
            raise JsonRpcRefusal(
                f"The {name.decode()} header does not match the request body.", code=HEADER_MISMATCH
            )


def refuses_over_http(style: RefusalStyle, call: McpCall) -> bool:
    """Whether a tool refusal is an HTTP 401/403 (True) or a tool result with ``mcp/www_authenticate``.

    ``auto``: ChatGPT marks its calls with ``openai/*`` keys in ``_meta`` and shows its linking UI
    only for the tool-result form (Apps SDK auth guide); every other client gets the HTTP answer
    the MCP authorization spec defines. The hint only picks the format: the decision is the same.
    """
    if style == "auto":
        return not any(str(key).startswith(_FALLBACK_STYLE_META_PREFIX) for key in call.meta)
    return style == "http"


class McpGate:
    """Pure ASGI: authenticates and authorizes each request, then hands it to the MCP SDK."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        verifier: TokenVerifier,
        tools: Mapping[str, ToolSpec],
        catalog: ScopeCatalog,
        screen: ArgumentScreen,
        limiter: RateLimiter,
        rate_limits: RateLimits,
        events: Events | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.verifier = verifier
        self.tools = tools
        self.catalog = catalog
        self.screen = screen
        self.limiter = limiter
        self.rate_limits = rate_limits
        self.events = events
        self.sessions = SessionOwners()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        principal: Principal | None = None
        call: McpCall | None = None
        try:
            token = bearer_token(scope, self.settings.max_token_bytes)
            if scope["method"] == "POST":
                body = await read_body(scope, receive, self.settings.max_body_bytes)
                call = parse_call(body, scope)
                bind_host_identifiers(call.meta)  # later log lines carry keyed hashes, never the values
            else:
                call = McpCall(method=None, tool=None, meta={})
            tool = self.tools.get(call.tool) if call.tool else None
            principal = await self._authenticate(token, tool)
            if tool is not None and refuses_over_http(self.settings.refusal_style, call):
                authorize(tool, principal, self.catalog)
            if call.tool is not None:  # unknown tools spend too, from one shared "(unknown)" budget
                await self._spend_budget(tool.name if tool else "(unknown)", principal, scope)
            owner = owner_of(principal)
            session_ids = header(scope, b"mcp-session-id")
            if session_ids and not self.sessions.admit(session_ids[0].decode("latin-1"), owner):
                raise UnknownSession("Session not found.")
        except Refusal as refusal:
            if self.events is not None:
                client = scope.get("client")
                declared = call.tool if call is not None and call.tool in self.tools else None
                await self.events.refused(refusal, principal, tool=declared, address=client[0] if client else None,
                                          required=self.tools[declared].scopes if declared else ())
            await send_refusal(send, refusal, self.settings.resource_metadata_url)
            return
        if not session_ids:
            send = self._recording_new_session(send, owner)
        if call.message is not None:
            body, screened = self._screened(call, body)
            if self.events is not None and call.tool in self.tools:
                await self._record_screening(call.tool, principal, screened)
            if screened.refusal is not None:
                await send_tool_error(send, call.message.get("id"), str(screened.refusal))
                return
            receive = replay(body, receive)
        binding = bind_principal(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            unbind_principal(binding)

    def _screened(self, call: McpCall, body: bytes) -> tuple[bytes, Screened]:
        """The body with the tool's arguments normalized, and what screening found."""
        if call.tool is None or call.message is None:
            return body, Screened(None, None)
        params = call.message["params"]
        screened = self.screen.screen(call.tool, params.get("arguments"))
        if screened.arguments is None or screened.arguments == params.get("arguments"):
            return body, screened
        message = {**call.message, "params": {**params, "arguments": screened.arguments}}
        return json.dumps(message, ensure_ascii=False).encode(), screened

    async def _record_screening(self, tool: str, principal: Principal | None, screened: Screened) -> None:
        """A refused call is a ``tool.call`` that never ran; injection-like arguments are flagged."""
        assert self.events is not None
        label, client_id = principal_label(principal), principal.client_id if principal else None
        if screened.injection is not None:
            await self.events.record_quietly(SecurityEvent(
                EventKind.INJECTION_FLAGGED, "flagged", principal=label, tool=tool, client_id=client_id,
                details={"where": "arguments", **screened.injection}))
        if screened.refusal is not None:
            await self.events.record_quietly(SecurityEvent(
                EventKind.TOOL_CALL, "invalid", principal=label, tool=tool, client_id=client_id,
                details={"field": screened.refusal.field, "rule": screened.refusal.rule}))

    def _recording_new_session(self, send: Send, owner: object) -> Send:
        """Wrap ``send`` to bind the session id the SDK assigns to this request's principal."""

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", ()):
                    if name.lower() == b"mcp-session-id":
                        self.sessions.created(value.decode("latin-1"), owner)  # type: ignore[arg-type]
            await send(message)

        return recording

    async def _spend_budget(self, tool: str, principal: Principal | None, scope: Scope) -> None:
        """MCP tools: servers MUST rate-limit tool invocations (per principal, client, address, tool)."""
        client = scope.get("client")
        keys = keys_for(
            f"{principal.issuer}|{principal.subject}" if principal else None,
            principal.client_id if principal else None,
            client[0] if client else None,
            tool,
            self.rate_limits,
        )
        decision = await self.limiter.hit_all(keys)  # RateLimitUnavailable (503) when it cannot answer
        if not decision.allowed:
            raise RateLimited(f"Too many calls to {tool}; try again later.",
                              retry_after=decision.retry_after_header)

    async def _authenticate(self, token: str | None, tool: ToolSpec | None) -> Principal | None:
        if token is None:
            return None
        try:
            verified = await self.verifier.verify(token)
        except InvalidToken as refusal:
            # MCP authorization: a 401 SHOULD name the scopes the operation needs.
            raise InvalidToken(refusal.description, scopes=tool.scopes if tool else ()) from None
        return Principal(
            subject=verified.subject,
            client_id=verified.client_id,
            scopes=self.catalog.expand(verified.scopes),
            issuer=verified.issuer,
            expires_at=verified.expires_at,
        )

