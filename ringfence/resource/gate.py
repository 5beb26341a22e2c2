"""The MCP endpoint's one decision point: every request to ``/mcp`` is decided here, before the MCP
SDK or any code of the author's (a tool, a preview, a confirmation resolver) runs.

The body, read and size-capped once by ops/limits.py, is parsed once into a typed :class:`McpCall`.
Then, in this order, each step returns or raises a typed refusal (:mod:`ringfence.refusals`):

1. ``authenticate``   the bearer token, from the ``Authorization`` header only (RFC 6750 §2.1),
                      verified on every request, public methods too (MCP: authorization on every request);
2. ``authorize``      ``tools/call`` of a protected tool: the principal holds every scope it declares;
3. ``admit_session``  the MCP session belongs to this principal (an anonymous one may be claimed once);
4. ``spend_budget``   ``tools/call``: the rate-limit budgets (per principal, client, address and tool;
                      without a token, the address's and the tool's anonymous budgets only);
5. ``screen``         ``tools/call`` of a declared tool: its arguments, strictly validated and normalized;
6. ``open_session``   a request that opens a 2025-era session: within the session limits (resource/sessions.py).

A failed authentication (a bad token, or none for a protected tool) spends the address's anonymous
budget before it is answered; past that budget it is answered 429 (:meth:`McpGate.count_failure`).

:meth:`McpGate.refuse` answers every refusal, in the form the client takes: HTTP 401/403 with
``WWW-Authenticate`` (MCP authorization), or, for ChatGPT's calls and ``--refusal-style tool-result``,
a tool result carrying ``_meta["mcp/www_authenticate"]`` (Apps SDK); invalid arguments as a tool
error. A call that passes goes to the SDK as the canonical JSON of exactly what was checked, with
the decision bound (:func:`ringfence.principal.authorized`) for the tool wrapper, which refuses any
call that does not carry one for its tool.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

import anyio.to_thread
from mcp.shared.inbound import NAME_BEARING_METHODS, decode_header_value
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ringfence.audit.records import EventKind
from ringfence.config import RefusalStyle
from ringfence.declaration import ToolSpec
from ringfence.events import Events, SecurityEvent, principal_label
from ringfence.guards.screening import ArgumentScreen
from ringfence.httpio import BODY_SCOPE_KEY, header, replay, send_refusal, send_tool_error
from ringfence.logs.context import bind_host_identifiers
from ringfence.ops.ratelimit import RateLimiter, RateLimitUnavailable
from ringfence.ops.ratelimit_keys import RateLimits, keys_for, unauthenticated_keys
from ringfence.policy import ScopeCatalog, authorize
from ringfence.principal import Principal, authorized
from ringfence.refusals import (
    HEADER_MISMATCH,
    INVALID_REQUEST,
    PARSE_ERROR,
    InsufficientScope,
    InvalidArguments,
    InvalidAuthorizationRequest,
    InvalidToken,
    JsonRpcRefusal,
    MissingToken,
    RateLimited,
    Refusal,
    tool_result_challenge,
)
from ringfence.resource.sessions import Opening, SessionOwners, owner_of
from ringfence.resource.tokens import TokenVerifier

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(rb"^[A-Za-z0-9\-._~+/]+=*$")
_BEARER = re.compile(rb"^[Bb][Ee][Aa][Rr][Ee][Rr] +(.*)$")
# RFC 6750 §2.2/§2.3 names; tokens there are refused, never read.
_TOKEN_PARAMETERS = frozenset({"access_token"})
_FALLBACK_STYLE_META_PREFIX = "openai/"
SCREEN_IN_THREAD_BYTES = 8 * 1024  # a tools/call larger than this is screened in a worker thread
UNKNOWN_TOOL_BUDGET = "(unknown)"  # calls to tools the app does not declare spend from one shared budget

Era = Literal["handshake", "modern"]  # 2025-11-25 and earlier (initialize, sessions), or 2026-07-28 on


@dataclass(frozen=True)
class McpCall:
    """One request to ``/mcp``, parsed once: everything the steps decide on."""

    era: Era
    method: str | None  # None for GET (the SSE stream), DELETE, and JSON-RPC responses
    tool: str | None  # tools/call: the tool's name
    arguments: Any  # tools/call: the arguments as sent
    meta: Mapping[str, Any]
    session_id: str | None
    address: str | None
    message: dict[str, Any] | None = None  # the JSON-RPC message of a POST
    size: int = 0  # the body's bytes

    @property
    def request_id(self) -> Any:
        return self.message.get("id") if self.message else None


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


def parse_call(scope: Scope) -> McpCall:
    """The request as one typed call; a body the SDK could be confused by is refused."""
    versions = header(scope, b"mcp-protocol-version")
    era: Era = "modern" if versions and versions[0].decode("latin-1") not in HANDSHAKE_PROTOCOL_VERSIONS \
        else "handshake"  # the SDK routes by the same rule
    sessions = header(scope, b"mcp-session-id")
    client = scope.get("client")
    session_id, address = sessions[0].decode("latin-1") if sessions else None, client[0] if client else None
    if scope["method"] != "POST":
        return McpCall(era, None, None, None, {}, session_id, address)
    body = scope.get(BODY_SCOPE_KEY, b"")
    message = parse_message(body)
    method, params = message.get("method"), message.get("params") or {}
    tool = arguments = None
    if method == "tools/call":
        tool, arguments = params.get("name"), params.get("arguments")
        if not isinstance(tool, str):
            raise JsonRpcRefusal("tools/call needs a tool name.", code=INVALID_REQUEST)
        if "id" not in message or message["id"] is None:
            raise JsonRpcRefusal("tools/call is a request: it needs an id.", code=INVALID_REQUEST)
    named = params.get(NAME_BEARING_METHODS[method]) if method in NAME_BEARING_METHODS else None
    _check_routing_headers(scope, method, named if isinstance(named, str) else None)
    meta = params.get("_meta")
    return McpCall(era, method, tool, arguments, meta if isinstance(meta, dict) else {}, session_id, address,
                   message, len(body))


def parse_message(body: bytes) -> dict[str, Any]:
    """One JSON-RPC message; batches, non-JSON and numbers JSON cannot hold are refused."""
    try:
        message = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise JsonRpcRefusal("The request body is not valid JSON.", code=PARSE_ERROR) from None
    if not isinstance(message, dict):
        # JSON-RPC batches were removed from MCP in 2025-06-18.
        raise JsonRpcRefusal("Send one JSON-RPC message per request.", code=INVALID_REQUEST)
    method, params = message.get("method"), message.get("params")
    if method is not None and not isinstance(method, str):
        raise JsonRpcRefusal("The JSON-RPC method must be a string.", code=INVALID_REQUEST)
    if method is None and "result" not in message and "error" not in message:
        # JSON-RPC 2.0 §4/§5: a request or notification has a method, a response a result or an error.
        raise JsonRpcRefusal("The message is neither a JSON-RPC request nor a response.", code=INVALID_REQUEST)
    if params is not None and not isinstance(params, dict):
        raise JsonRpcRefusal("The JSON-RPC params must be an object.", code=INVALID_REQUEST)
    return message


def _refuse_constant(name: str) -> Any:
    # RFC 8259 §6: NaN and Infinity are not JSON numbers; parsers disagree about them.
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: no float holds it, and re-serialized it would read "Infinity"
        raise ValueError("number out of range")
    return value


def canonical_body(message: dict[str, Any]) -> bytes:
    """The message as the SDK gets it: re-serialized from what was checked, so no parser can read the
    client's bytes differently (duplicate keys, odd escapes). A lone surrogate is not text (RFC 8259 §8.2)."""
    try:
        return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        raise JsonRpcRefusal("The request body holds text that is not valid Unicode.", code=PARSE_ERROR) from None


def _check_routing_headers(scope: Scope, method: str | None, named: str | None) -> None:
    """MCP 2026-07-28: ``Mcp-Method`` and ``Mcp-Name`` (the tool's or prompt's name, the resource's URI)
    must match the body, or 400 HeaderMismatch. A base64-encoded value (``=?base64?…?=``, for text a header
    cannot hold) is decoded as the SDK decodes it; one that does not decode matches nothing."""
    for name, expected in ((b"mcp-method", method), (b"mcp-name", named)):
        values = header(scope, name)
        if values and (len(values) > 1 or decode_header_value(values[0].decode("latin-1")) != (expected or "")):
            raise JsonRpcRefusal(
                f"The {name.decode()} header does not match the request body.", code=HEADER_MISMATCH
            )


_JSON, _SSE = b"application/json", b"text/event-stream"


def scanner_tolerant(scope: Scope) -> Scope:
    """A POST whose body parsed as JSON-RPC and that no browser sent (no ``Origin``) gets the media types
    the SDK requires: OpenAI's review-time tool scan sends ``Accept: */*`` and ``Content-Type:
    text/octet-stream`` (openai-apps-sdk-examples#183). With an ``Origin`` the SDK's 406/415 stands: a
    page may POST ``text/plain`` to another site without a CORS preflight."""
    if header(scope, b"origin"):
        return scope
    accept = b",".join(header(scope, b"accept")).lower()
    content_type = b",".join(header(scope, b"content-type")).lower()
    if _JSON in content_type.split(b";")[0] and _JSON in accept and _SSE in accept:
        return scope
    headers = [(name, value) for name, value in scope["headers"] if name.lower() not in (b"accept", b"content-type")]
    return {**scope, "headers": [*headers, (b"content-type", _JSON), (b"accept", _JSON + b", " + _SSE)]}


def without_resumption(scope: Scope) -> Scope:
    """A GET without ``Last-Event-ID``: ringfence keeps no event store, so no stream can be resumed
    (MCP streamable HTTP: resumability is optional; the header is then ignored), and the SDK, given the
    header without a store, returns no answer at all (a 500 from the server)."""
    if not header(scope, b"last-event-id"):
        return scope
    return {**scope, "headers": [(name, value) for name, value in scope["headers"] if name.lower() != b"last-event-id"]}


def refuses_over_http(style: RefusalStyle, call: McpCall) -> bool:
    """Whether a tool refusal is an HTTP 401/403 (True) or a tool result with ``mcp/www_authenticate``.

    ``auto``: ChatGPT marks its calls with ``openai/*`` keys in ``_meta`` and shows its linking UI
    only for the tool-result form (Apps SDK auth guide); every other client gets the HTTP answer
    the MCP authorization spec defines. The hint only picks the format: the decision is the same.
    """
    if style == "auto":
        return not from_openai(call)
    return style == "http"


def from_openai(call: McpCall) -> bool:
    """ChatGPT marks its calls with ``openai/*`` keys in ``_meta`` (a hint for formats, never for access)."""
    return any(str(key).startswith(_FALLBACK_STYLE_META_PREFIX) for key in call.meta)


class McpGate:
    """Pure ASGI in front of the MCP SDK's request handler: decides each request, then hands it on."""

    def __init__(
        self,
        sdk: ASGIApp,
        *,
        verifier: TokenVerifier,
        tools: Mapping[str, ToolSpec],
        catalog: ScopeCatalog,
        screen: ArgumentScreen,
        limiter: RateLimiter,
        rate_limits: RateLimits,
        resource_metadata_url: str,
        refusal_style: RefusalStyle = "auto",
        sessions: SessionOwners,
        max_token_bytes: int = 8192,
        events: Events | None = None,
    ) -> None:
        self.sdk = sdk
        self.verifier = verifier
        self.tools = tools
        self.catalog = catalog
        self.screen_arguments = screen
        self.limiter = limiter
        self.rate_limits = rate_limits
        self.resource_metadata_url = resource_metadata_url
        self.refusal_style = refusal_style
        self.max_token_bytes = max_token_bytes
        self.events = events
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.sdk(scope, receive, send)
            return
        call: McpCall | None = None
        principal: Principal | None = None
        opening: Opening | None = None
        try:
            call = parse_call(scope)
            token = bearer_token(scope, self.max_token_bytes)
            bind_host_identifiers(call.meta)  # later log lines carry keyed hashes, never the values
            principal = await self.authenticate(call, token)
            tool = self.tools.get(call.tool) if call.tool is not None else None
            if tool is not None:
                self.authorize(tool, principal)
            self.admit_session(call, principal)
            if call.tool is not None:
                await self.spend_budget(call, tool, principal)
            message = await self.screen(call, tool, principal) if tool is not None else call.message
            body = canonical_body(message) if message is not None else b""
            opening = self.open_session(call, principal)
        except Refusal as refusal:
            refusal = await self.count_failure(call, refusal)
            await self.refuse(call, principal, refusal, send)
            return
        if opening is not None:
            send = self._binding_new_session(send, opening)
        if call.message is not None:
            scope = scanner_tolerant(scope)
        else:
            scope = without_resumption(scope)
        try:
            with authorized(principal, tool.name if tool is not None else None, openai_host=from_openai(call)):
                await self.sdk(scope, replay(body, receive), send)
        finally:
            if opening is not None:
                self.sessions.abandon(opening)  # no-op once the SDK named the session
            ended = opening.session_id if opening is not None else call.session_id
            if ended and call.era == "handshake":
                self.sessions.forget_if_ended(ended)  # a DELETE, an unknown id, a session that failed to open

    # -- the steps, in order ---------------------------------------------------------------------

    async def authenticate(self, call: McpCall, token: str | None) -> Principal | None:
        """The verified caller, or ``None`` when no token was sent; a bad token is refused (401)."""
        if token is None:
            return None
        try:
            verified = await self.verifier.verify(token)
        except InvalidToken as refusal:
            # MCP authorization: a 401 SHOULD name the scopes the operation needs.
            tool = self.tools.get(call.tool) if call.tool is not None else None
            raise InvalidToken(refusal.description, scopes=tool.scopes if tool else ()) from None
        return Principal(
            subject=verified.subject,
            client_id=verified.client_id,
            scopes=self.catalog.expand(verified.scopes),
            issuer=verified.issuer,
            expires_at=verified.expires_at,
        )

    def authorize(self, tool: ToolSpec, principal: Principal | None) -> None:
        """Every scope the tool declares, or 401 (no token) / 403 ``insufficient_scope`` (MCP step-up)."""
        authorize(tool, principal, self.catalog)

    def admit_session(self, call: McpCall, principal: Principal | None) -> None:
        """MCP security best practices: a session is never handed from one principal to another, and an
        id without a live binding (never issued, ended, or forgotten) is answered 404, never adopted.
        2026-era requests have no sessions (the SDK ignores the header): there only another principal's
        live session id is refused."""
        if call.session_id is None or (call.era == "modern" and not self.sessions.holds(call.session_id)):
            return
        self.sessions.admit(call.session_id, owner_of(principal))

    def open_session(self, call: McpCall, principal: Principal | None) -> Opening | None:
        """A 2025-era request without a session id makes the SDK open one: count it first, within the
        limits of its source (address, or principal) and of all sessions (429 or 503 when over)."""
        if call.session_id is not None or call.era != "handshake":
            return None
        return self.sessions.open(owner_of(principal), call.address)

    async def spend_budget(self, call: McpCall, tool: ToolSpec | None, principal: Principal | None) -> None:
        """MCP tools: servers MUST rate-limit tool invocations (per principal, client, address, tool)."""
        keys = keys_for(  # principal None: the anonymous budgets only, never a signed-in caller's
            principal.key if principal else None,
            principal.client_id if principal else None,
            call.address,
            tool.name if tool is not None else UNKNOWN_TOOL_BUDGET,
            self.rate_limits,
        )
        decision = await self.limiter.hit_all(keys)  # RateLimitUnavailable (503) when it cannot answer
        if not decision.allowed:
            raise RateLimited(f"Too many calls to {call.tool}; try again later.",
                              retry_after=decision.retry_after_header)

    async def screen(self, call: McpCall, tool: ToolSpec, principal: Principal | None) -> dict[str, Any]:
        """The message with the tool's arguments validated and normalized (guards/screening.py); a large
        call's in a worker thread, so that its injection scan (about 30 ms at 64 KiB) holds up no other."""
        if call.size > SCREEN_IN_THREAD_BYTES:
            screened = await anyio.to_thread.run_sync(self.screen_arguments.screen, tool.name, call.arguments)
        else:
            screened = self.screen_arguments.screen(tool.name, call.arguments)
        if self.events is not None and screened.injection is not None:  # a signal for monitoring, not a refusal
            await self.events.record_quietly(SecurityEvent(
                EventKind.INJECTION_FLAGGED, "flagged", principal=principal_label(principal), tool=tool.name,
                client_id=principal.client_id if principal else None,
                details={"where": "arguments", **screened.injection}))
        if screened.refusal is not None:
            raise InvalidArguments(str(screened.refusal), field=screened.refusal.field, rule=screened.refusal.rule)
        assert call.message is not None and screened.arguments is not None
        params = call.message["params"]
        return {**call.message, "params": {**params, "arguments": screened.arguments}}

    async def count_failure(self, call: McpCall | None, refusal: Refusal) -> Refusal:
        """A failed authentication spends the address's anonymous budget, as an anonymous call does, so a
        flood of bad or missing tokens is slowed like any other anonymous flood: past the budget the
        answer is 429 instead of 401 (or the tool-result challenge). Other refusals spend nothing."""
        if not isinstance(refusal, InvalidToken | MissingToken | InvalidAuthorizationRequest):
            return refusal
        address = call.address if call is not None else None
        try:
            decision = await self.limiter.hit_all(unauthenticated_keys(address, self.rate_limits))
        except RateLimitUnavailable:  # the call is refused either way: the 401 says what the client must fix
            return refusal
        if decision.allowed:
            return refusal
        return RateLimited("Too many requests without a valid access token from your address; try again later.",
                           retry_after=decision.retry_after_header)

    # -- the one place a refusal is answered -----------------------------------------------------

    async def refuse(self, call: McpCall | None, principal: Principal | None, refusal: Refusal, send: Send) -> None:
        """Record the refusal, then answer it as a tool result or over HTTP, as the client takes it."""
        tool = self.tools.get(call.tool) if call is not None and call.tool is not None else None
        await self._record_refusal(call, principal, tool, refusal)
        if call is not None and isinstance(refusal, InvalidArguments):
            await send_tool_error(send, call.request_id, refusal.description, modern=call.era == "modern")
        elif (call is not None and tool is not None and isinstance(refusal, MissingToken | InsufficientScope)
              and not refuses_over_http(self.refusal_style, call)):
            await send_tool_error(send, call.request_id, refusal.description,
                                  tool_result_challenge(refusal, self.resource_metadata_url),
                                  modern=call.era == "modern")
        else:
            await send_refusal(send, refusal, self.resource_metadata_url)

    async def _record_refusal(self, call: McpCall | None, principal: Principal | None, tool: ToolSpec | None,
                              refusal: Refusal) -> None:
        if self.events is None:
            return
        if isinstance(refusal, InvalidArguments):  # a tool.call that never ran
            await self.events.record_quietly(SecurityEvent(
                EventKind.TOOL_CALL, "invalid", principal=principal_label(principal),
                tool=tool.name if tool else None, client_id=principal.client_id if principal else None,
                details={"field": refusal.field, "rule": refusal.rule}))
            return
        await self.events.refused(refusal, principal, tool=tool.name if tool else None,
                                  address=call.address if call is not None else None,
                                  required=tool.scopes if tool else ())

    def _binding_new_session(self, send: Send, opening: Opening) -> Send:
        """Wrap ``send`` to bind the session id the SDK assigns to the opening's owner."""

        async def binding(message: Message) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", ()):
                    if name.lower() == b"mcp-session-id":
                        self.sessions.bind(opening, value.decode("latin-1"))
            await send(message)

        return binding
