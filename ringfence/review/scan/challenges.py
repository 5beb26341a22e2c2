"""Challenges: what the server answers a caller without a token (RFC 6750 §3, MCP authorization, Apps SDK)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ringfence.review.report import Finding
from ringfence.review.scan import catalogue as c
from ringfence.review.scan.calls import CallOutcome, classify, declared_schemes, harmless_arguments, is_public
from ringfence.review.scan.context import ScanContext, failed, passed, skipped
from ringfence.review.scan.probe import Exchange, OutOfScope, Unreachable
from ringfence.review.scan.wire import McpSession, challenge_parameters


def probe_anonymously(ctx: ScanContext) -> bool:
    """Initialize without a token, then list and call the tools (with arguments they refuse); False when the
    server cannot be reached at all."""
    session = ctx.session()
    try:
        answer = session.initialize()
    except Unreachable:
        return False
    ctx.keep(answer.exchange)
    ctx.anonymous = answer
    if answer.result is not None:
        ctx.anonymous_session = session
    if answer.exchange.status == 401:
        ctx.challenge = answer.exchange
    if ctx.anonymous_session is not None:
        ctx.anonymous_calls = _call_tools_anonymously(ctx, ctx.anonymous_session)
        if ctx.challenge is None and ctx.protected_tools:
            _plain_client_challenge(ctx, ctx.anonymous_session, ctx.protected_tools[0])
    return True


def _plain_client_challenge(ctx: ScanContext, session: McpSession, tool: dict[str, Any]) -> None:
    """Refusals came in the Apps SDK form (the calls looked like ChatGPT's); call one tool once more as any
    other client would, to see the HTTP challenge too."""
    try:
        answer = session.call_tool(tool["name"], harmless_arguments(tool) or {})
    except OutOfScope:
        return
    if answer.exchange.status == 401:
        ctx.challenge = ctx.keep(answer.exchange)


def run(ctx: ScanContext) -> Iterator[Finding]:
    anonymous = ctx.anonymous
    assert anonymous is not None, "probe_anonymously first"
    outcomes = ctx.anonymous_calls
    if ctx.anonymous_session is not None:
        yield from _check_tool_protection(ctx, outcomes)
    elif ctx.challenge is not None:
        yield from _check_closed_server(ctx, ctx.challenge)
    if not ctx.protected and not any(outcome.kind.startswith("refused") for outcome, _ in outcomes.values()):
        writes = [tool["name"] for tool in ctx.tools
                  if (tool.get("annotations") or {}).get("readOnlyHint") is not True]
        severity = "high" if writes else None
        detail = f"; tools that may change data: {', '.join(writes)}" if writes else ""
        yield failed(c.NO_AUTHORIZATION, f"every request was answered without a token and no protected-resource "
                     f"metadata is published{detail}", anonymous.exchange, location=ctx.url, severity=severity)
        for check in (c.CHALLENGE_HEADER, c.CHALLENGE_SCOPE, c.CHALLENGE_ERROR):
            yield skipped(check, "the server never asked for a token")
        return
    yield passed(c.NO_AUTHORIZATION, "the server asks for a token", ctx.url)
    yield from _check_challenge(ctx, outcomes)


def _call_tools_anonymously(ctx: ScanContext, session: McpSession) -> dict[str, tuple[CallOutcome, Exchange]]:
    """List the tools and call each without a token (with arguments it refuses); the outcomes by tool name."""
    try:
        listed = session.send("tools/list", {})
    except OutOfScope:
        return {}
    ctx.keep(listed.exchange)
    if listed.exchange.status == 401:
        ctx.challenge = ctx.challenge or listed.exchange
    tools = [tool for tool in (listed.result or {}).get("tools", []) if isinstance(tool, dict) and
             isinstance(tool.get("name"), str)]
    if tools:
        ctx.tools = tools
    outcomes: dict[str, tuple[CallOutcome, Exchange]] = {}
    for tool in tools:
        arguments = harmless_arguments(tool)
        if arguments is None:
            continue
        try:
            answer = session.call_tool(tool["name"], arguments, as_chatgpt=True)
        except OutOfScope:
            break
        outcome = classify(answer)
        outcomes[tool["name"]] = (outcome, answer.exchange)
        if outcome.kind == "refused" and outcome.form == "http" and ctx.challenge is None:
            ctx.challenge = answer.exchange
        if outcome.kind.startswith("refused"):
            ctx.protected_tools.append(tool)
    return outcomes


def _check_tool_protection(ctx: ScanContext, outcomes: dict[str, tuple[CallOutcome, Exchange]]) -> Iterator[Finding]:
    uncalled = [tool["name"] for tool in ctx.tools if tool["name"] not in outcomes]
    note = f" ({', '.join(uncalled)} not called: no arguments to refuse and not read-only)" if uncalled else ""
    refused_publics = [(name, exchange) for name, (outcome, exchange) in outcomes.items()
                       if outcome.kind.startswith("refused") and is_public(ctx.tool(name))]
    if refused_publics:
        yield failed(c.PUBLIC_TOOL_REFUSED, "declared noauth but refused without a token: "
                     + ", ".join(name for name, _ in refused_publics), *(e for _, e in refused_publics[:2]),
                     location=ctx.url)
    else:
        yield passed(c.PUBLIC_TOOL_REFUSED, "every noauth tool answered", ctx.url)
    bare = [(name, exchange) for name, (outcome, exchange) in outcomes.items()
            if outcome.kind == "refused-without-challenge" or (outcome.form == "tool-result" and not (
                outcome.challenge.get("error") and outcome.challenge.get("error_description")))]
    if bare:
        yield failed(c.TOOL_REFUSAL_FORM, "refused without a challenge a client can follow (a tool-result "
                     "challenge needs error and error_description for ChatGPT): "
                     + ", ".join(name for name, _ in bare), *(e for _, e in bare[:2]), location=ctx.url)
    elif any(outcome.kind == "refused" for outcome, _ in outcomes.values()):
        yield passed(c.TOOL_REFUSAL_FORM, "refusals carry a challenge" + note, ctx.url)
    else:
        yield skipped(c.TOOL_REFUSAL_FORM, "no tool was refused without a token" + note, ctx.url)
    if not ctx.protected and not ctx.protected_tools:
        yield skipped(c.TOOL_UNPROTECTED, "the server protects nothing (see SC201)")
        return
    unprotected, unclear = [], []
    for name, (outcome, exchange) in outcomes.items():
        tool = ctx.tool(name)
        if is_public(tool):
            continue
        if outcome.kind == "ran":
            why = ("declares OAuth only" if declared_schemes(tool) else
                   "declares no securitySchemes, on a server that asks for tokens")
            unprotected.append((name, why, exchange))
        elif outcome.kind in ("server-error", "unclear"):
            unclear.append(f"{name} ({exchange.status})")
    if unprotected:
        yield failed(c.TOOL_UNPROTECTED, "answered without a token: " + "; ".join(
            f"{name} ({why})" for name, why, _ in unprotected), *(e for _, _, e in unprotected[:2]),
            location=ctx.url)
    elif unclear:  # neither a refusal nor a run: protection not shown, so not passed
        yield skipped(c.TOOL_UNPROTECTED, "the answer shows neither a refusal nor a run for "
                      + ", ".join(unclear), ctx.url)
    else:
        yield passed(c.TOOL_UNPROTECTED, "no protected tool answered without a token" + note, ctx.url)


def _check_closed_server(ctx: ScanContext, refusal: Exchange) -> Iterator[Finding]:
    """Initialize itself needs a token: no tool runs anonymously, and none declared public can."""
    publics = [tool["name"] for tool in ctx.tools if is_public(tool)]  # listed with --token
    if publics:
        yield failed(c.PUBLIC_TOOL_REFUSED, "initialize needs a token, so tools declared noauth cannot be reached "
                     "without one: " + ", ".join(publics), refusal, location=ctx.url)
    else:
        yield passed(c.PUBLIC_TOOL_REFUSED, "no tool declares noauth" if ctx.tools else
                     "initialize needs a token (tools not listed: pass --token to see their schemes)", ctx.url)
    yield passed(c.TOOL_REFUSAL_FORM, "initialize is refused with an HTTP 401 challenge", ctx.url)
    yield passed(c.TOOL_UNPROTECTED, "initialize needs a token, so no tool answers without one", ctx.url)


def _check_challenge(ctx: ScanContext, outcomes: dict[str, tuple[CallOutcome, Exchange]]) -> Iterator[Finding]:
    header, evidence = _first_challenge(ctx, outcomes)
    if header is None:
        for check in (c.CHALLENGE_HEADER, c.CHALLENGE_SCOPE, c.CHALLENGE_ERROR):
            yield skipped(check, "no request was refused without a token")
        return
    parameters = challenge_parameters(header)
    if "resource_metadata" in parameters:
        yield passed(c.CHALLENGE_HEADER, f"challenge: {header}", ctx.url)
    else:
        yield failed(c.CHALLENGE_HEADER, "the refusal carries no Bearer challenge with resource_metadata" if header
                     else "the refusal carries no WWW-Authenticate challenge", evidence, location=ctx.url)
    if parameters.get("scope"):
        yield passed(c.CHALLENGE_SCOPE, f"scope={parameters['scope']}", ctx.url)
    else:
        yield failed(c.CHALLENGE_SCOPE, "the challenge does not say which scopes to ask for", evidence,
                     location=ctx.url)
    if ctx.challenge is None:
        # The Apps SDK form is different on purpose: ChatGPT needs error and error_description in it.
        yield skipped(c.CHALLENGE_ERROR, "refusals come as tool results (Apps SDK form), which carry an error "
                      "code by design", ctx.url)
    elif "error" in parameters:
        yield failed(c.CHALLENGE_ERROR, f"error={parameters['error']} although no credentials were sent", evidence,
                     location=ctx.url)
    else:
        yield passed(c.CHALLENGE_ERROR, "no error code without credentials", ctx.url)


def _first_challenge(ctx: ScanContext, outcomes: dict[str, tuple[CallOutcome, Exchange]]
                     ) -> tuple[str | None, Exchange | str]:
    """The first HTTP challenge to a request without a token, else the first Apps SDK-form one."""
    if ctx.challenge is not None:
        return ctx.challenge.header("www-authenticate"), ctx.challenge
    for outcome, exchange in outcomes.values():
        if outcome.kind == "refused" and outcome.form == "tool-result":
            return outcome.header, exchange
    return None, ""
