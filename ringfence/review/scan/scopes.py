"""With a real token (``--token``): is it bound to this server, and does each tool enforce its scopes?"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

from ringfence.review.report import Finding
from ringfence.review.scan import catalogue as c
from ringfence.review.scan.calls import classify, declared_scopes, harmless_arguments
from ringfence.review.scan.context import ScanContext, failed, passed, skipped
from ringfence.review.scan.probe import OutOfScope
from ringfence.review.scan.wire import McpSession


def unverified_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT, read without checking it (the server checks; the scanner only looks), or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def token_scopes(claims: dict[str, Any]) -> set[str] | None:
    scope = claims.get("scope", claims.get("scp"))
    if isinstance(scope, str):
        return set(scope.split())
    if isinstance(scope, list):
        return {item for item in scope if isinstance(item, str)}
    return None


def run(ctx: ScanContext) -> Iterator[Finding]:
    checks = (c.TOKEN_ACCEPTED, c.AUDIENCE_BOUND, c.SCOPE_ENFORCED, c.SCOPE_CHALLENGE)
    if ctx.token is None:
        for check in checks:
            yield skipped(check, "no --token given")
        return
    session = McpSession(ctx.probe, ctx.url, ctx.token)
    answer = session.initialize()
    ctx.keep(answer.exchange)
    if answer.result is None:
        yield failed(c.TOKEN_ACCEPTED, f"the server answered initialize with {answer.exchange.status}; the checks "
                     "that need the token were not run", answer.exchange, location=ctx.url)
        for check in checks[1:]:
            yield skipped(check, "the token given was refused (see SC401)")
        return
    ctx.token_session = session
    yield passed(c.TOKEN_ACCEPTED, "initialize answered", ctx.url)
    if not ctx.tools:
        ctx.tools = session.list_tools()
    claims = unverified_claims(ctx.token)
    yield from _check_audience(ctx, claims)
    yield from _check_scopes(ctx, session, claims)


def _check_audience(ctx: ScanContext, claims: dict[str, Any] | None) -> Iterator[Finding]:
    if claims is None:
        yield skipped(c.AUDIENCE_BOUND, "the token is not a JWT, so its audience cannot be read", ctx.url)
        return
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    resource = (ctx.resource_metadata or {}).get("resource", ctx.url)
    if resource in audiences or ctx.url in audiences:
        yield passed(c.AUDIENCE_BOUND, f"aud is {audience!r}", ctx.url)
    else:
        # RFC 8707 §2: the server accepted a token whose audience is not this resource.
        yield failed(c.AUDIENCE_BOUND, f"the server accepted a token whose aud is {audience!r}, not {resource!r}: "
                     "a token for any other service of the same issuer would work here",
                     f"token claims: aud={audience!r}, iss={claims.get('iss')!r}", location=ctx.url)


def _check_scopes(ctx: ScanContext, session: McpSession, claims: dict[str, Any] | None) -> Iterator[Finding]:
    held = token_scopes(claims) if claims is not None else None
    if held is None:
        for check in (c.SCOPE_ENFORCED, c.SCOPE_CHALLENGE):
            yield skipped(check, "the token's scopes cannot be read (not a JWT, or no scope claim)", ctx.url)
        return
    beyond = [(tool, needed) for tool in ctx.tools if (needed := declared_scopes(tool)) and not needed <= held]
    beyond = [(tool, needed) for tool, needed in beyond if harmless_arguments(tool) is not None]
    if not beyond:
        for check in (c.SCOPE_ENFORCED, c.SCOPE_CHALLENGE):
            yield skipped(check, "the token holds every scope the tools declare (pass a token with fewer scopes)",
                          ctx.url)
        return
    unenforced, vague, enforced, unclear = [], [], [], []
    for tool, needed in beyond[:5]:
        try:
            answer = session.call_tool(tool["name"], harmless_arguments(tool) or {})
        except OutOfScope:
            break
        outcome = classify(answer)
        missing = " ".join(sorted(needed - held))
        if outcome.kind == "ran":
            unenforced.append((tool["name"], missing, answer.exchange))
        elif outcome.kind in ("server-error", "unclear"):
            unclear.append(f"{tool['name']} ({answer.exchange.status})")
        else:
            enforced.append(tool["name"])
            if outcome.challenge.get("error") != "insufficient_scope" or not outcome.challenge.get("scope"):
                vague.append((tool["name"], answer.exchange))
    if unenforced:
        yield failed(c.SCOPE_ENFORCED, "ran for a token without the scopes the tool declares: " + "; ".join(
            f"{name} (lacks {missing})" for name, missing, _ in unenforced), *(e for _, _, e in unenforced[:2]),
            location=ctx.url)
    elif unclear:  # neither a refusal nor a run: enforcement not shown, so not passed
        yield skipped(c.SCOPE_ENFORCED, "the answer shows neither a refusal nor a run for " + ", ".join(unclear),
                      ctx.url)
    else:
        yield passed(c.SCOPE_ENFORCED, "refused: " + ", ".join(enforced), ctx.url)
    if vague:
        yield failed(c.SCOPE_CHALLENGE, "refused without an insufficient_scope challenge naming the scopes: "
                     + ", ".join(name for name, _ in vague), *(e for _, e in vague[:2]), location=ctx.url)
    elif enforced:
        yield passed(c.SCOPE_CHALLENGE, "each refusal names the scopes needed", ctx.url)
    else:
        yield skipped(c.SCOPE_CHALLENGE, "no tool refused the token", ctx.url)
