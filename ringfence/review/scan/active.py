"""``--active`` checks, which send more traffic: a bounded burst (rate limiting) and bad input (robustness)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

from ringfence.review.report import Finding
from ringfence.review.scan import catalogue as c
from ringfence.review.scan.calls import declared_scopes, harmless_arguments
from ringfence.review.scan.context import ScanContext, failed, passed, skipped
from ringfence.review.scan.probe import Exchange, OutOfScope, Unreachable
from ringfence.review.scan.scopes import token_scopes, unverified_claims
from ringfence.review.scan.wire import MCP_ACCEPT

MAX_BURST = 1000
HUGE_BODY_BYTES = 5 * 1024 * 1024  # past the 4 MiB most servers (and the MCP SDK) cap bodies at
DEEP_NESTING = 10_000


def run(ctx: ScanContext) -> Iterator[Finding]:
    if not ctx.active:
        yield skipped(c.RATE_LIMIT, "sends a burst of requests: pass --active", ctx.url)
        yield skipped(c.BAD_INPUT, "sends malformed and oversized bodies: pass --active", ctx.url)
        yield skipped(c.ISS_IN_RESPONSE, "registers a client: pass --active", ctx.url)
        return
    yield from _check_bad_input(ctx)
    yield from _check_iss_in_response(ctx)
    yield from _check_rate_limit(ctx)


def _post(ctx: ScanContext, body: bytes, content_type: str = "application/json") -> Exchange:
    headers = {"accept": MCP_ACCEPT, "content-type": content_type}
    if ctx.credential:
        headers["authorization"] = f"Bearer {ctx.credential}"
    return ctx.probe.request("POST", ctx.url, headers=headers, content=body)


def _bad_bodies() -> list[tuple[str, bytes]]:
    return [
        ("malformed JSON", b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {'),
        ("invalid UTF-8", b'{"jsonrpc": "2.0", "id": 1, "method": "\xff\xfe"}'),
        ("a JSON array of numbers", b"[1, 2, 3]"),
        (f"{DEEP_NESTING:,}-deep nested JSON",
         b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"x": ' + b"[" * DEEP_NESTING
         + b"]" * DEEP_NESTING + b"}}"),
        (f"a {HUGE_BODY_BYTES // (1024 * 1024)} MiB body",
         b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"x": "' + b"a" * HUGE_BODY_BYTES + b'"}}'),
    ]


def _check_bad_input(ctx: ScanContext) -> Iterator[Finding]:
    broken, timed_out, answered = [], [], []
    for what, body in _bad_bodies():
        try:
            exchange = _post(ctx, body)
        except Unreachable:
            timed_out.append(what)
            continue
        except OutOfScope:
            break
        if exchange.status >= 500:
            broken.append((what, exchange))
        else:
            answered.append(f"{what} -> {exchange.status}")
    if broken:
        yield failed(c.BAD_INPUT, "server errors for: " + ", ".join(what for what, _ in broken),
                     *(exchange.evidence(what) for what, exchange in broken[:3]), location=ctx.url)
    elif timed_out:
        yield failed(c.BAD_INPUT, "no answer (connection dropped or timed out) for: " + ", ".join(timed_out),
                     location=ctx.url, severity="medium")
    else:
        yield passed(c.BAD_INPUT, "; ".join(answered), ctx.url)


def _burst_request(ctx: ScanContext) -> Callable[[], Exchange]:
    """What the burst repeats: a tool call (MCP tools: servers MUST rate limit tool invocations), with the
    token when there is one, with arguments the tool refuses; an initialize when no tool can be called."""
    session = ctx.token_session or ctx.anonymous_session
    held = token_scopes(unverified_claims(ctx.token) or {}) if ctx.token else None
    for tool in ctx.tools if session is not None else []:
        arguments = harmless_arguments(tool)
        needed = declared_scopes(tool) or set()
        if arguments is not None and (held is None or needed <= held):
            return lambda: session.call_tool(tool["name"], arguments).exchange
    return lambda: ctx.session(ctx.token).initialize().exchange


def _check_rate_limit(ctx: ScanContext) -> Iterator[Finding]:
    burst = max(1, min(ctx.burst, MAX_BURST))
    send = _burst_request(ctx)
    statuses: dict[int, int] = {}
    limited: Exchange | None = None
    for _ in range(burst):
        try:
            exchange = send()
        except (OutOfScope, Unreachable):
            break
        statuses[exchange.status] = statuses.get(exchange.status, 0) + 1
        if exchange.status == 429:
            limited = exchange
            break
    sent = sum(statuses.values())
    if limited is None:
        yield failed(c.RATE_LIMIT, f"no 429 after {sent} tool calls in a burst "
                     f"(answers: {', '.join(f'{s} x{n}' for s, n in sorted(statuses.items()))}); raise --burst if "
                     "the limit is higher", location=ctx.url)
    elif not limited.header("retry-after"):
        yield failed(c.RATE_LIMIT, f"429 after {sent} requests, but without Retry-After", limited,
                     location=ctx.url, severity="low")
    else:
        yield passed(c.RATE_LIMIT, f"429 with Retry-After: {limited.header('retry-after')} after {sent} requests",
                     ctx.url)


# Nothing listens there: the browser step never happens, the scanner only reads the redirect.
_CALLBACK = "http://127.0.0.1:9/ringfence-scan/callback"
_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 Appendix B


def _check_iss_in_response(ctx: ScanContext) -> Iterator[Finding]:
    """Register one client (RFC 7591), ask for an unsupported response type, read the error redirect."""
    metadata = ctx.server_metadata or {}
    if metadata.get("authorization_response_iss_parameter_supported") is not True:
        yield skipped(c.ISS_IN_RESPONSE, "the authorization server does not advertise iss (see SC115)", ctx.url)
        return
    registration, authorize = metadata.get("registration_endpoint"), metadata.get("authorization_endpoint")
    if not isinstance(registration, str) or not isinstance(authorize, str):
        yield skipped(c.ISS_IN_RESPONSE, "no registration endpoint to make a client with", ctx.url)
        return
    registered = ctx.probe.request("POST", registration, json_body={
        "client_name": "ringfence-scan", "redirect_uris": [_CALLBACK], "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code"], "response_types": ["code"], "application_type": "native"})
    client_id = (registered.json() or {}).get("client_id") if registered.status in (200, 201) else None
    if not isinstance(client_id, str):
        yield skipped(c.ISS_IN_RESPONSE, f"registration answered {registered.status}", ctx.url)
        return
    answer = ctx.probe.request("GET", authorize, params={
        "response_type": "ringfence_scan_unsupported", "client_id": client_id, "redirect_uri": _CALLBACK,
        "state": "ringfence-scan", "code_challenge": _CHALLENGE, "code_challenge_method": "S256"})
    location = answer.header("location")
    if answer.status not in (302, 303) or not location.startswith(_CALLBACK):
        yield skipped(c.ISS_IN_RESPONSE, f"the authorization endpoint answered {answer.status} without "
                      "redirecting the error", ctx.url)
        return
    issued = parse_qs(urlsplit(location).query).get("iss", [None])[0]
    if issued == ctx.issuer:
        yield passed(c.ISS_IN_RESPONSE, f"iss={issued}", authorize)
    else:
        yield failed(c.ISS_IN_RESPONSE, f"the error redirect carries iss={issued!r}, the issuer is {ctx.issuer!r}",
                     answer, location=authorize)
