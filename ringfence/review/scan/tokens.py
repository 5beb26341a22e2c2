"""Forged tokens: the scanner mints tokens no honest authorization server would, and each must be refused
with 401 and ``error="invalid_token"`` (OAuth 2.1 §5.2, RFC 6750 §3.1, MCP authorization §Token Handling).

The tokens are built here by hand (RFC 7515 compact serialization) because the point is to break the
rules a JOSE library enforces: ``alg: none``, an HMAC keyed with a public key, a key the issuer never had.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from ringfence.review.report import Check, Finding
from ringfence.review.scan import catalogue as c
from ringfence.review.scan.calls import classify, harmless_arguments
from ringfence.review.scan.context import ScanContext, failed, passed, skipped
from ringfence.review.scan.probe import Exchange, OutOfScope
from ringfence.review.scan.wire import McpSession, challenge_parameters

OTHER_AUDIENCE = "https://ringfence-scan.invalid/mcp"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(document: dict[str, Any]) -> str:
    return _b64(json.dumps(document, separators=(",", ":")).encode())


class Forger:
    """Claims that look right for this server, signed wrongly on purpose."""

    def __init__(self, ctx: ScanContext) -> None:
        metadata = ctx.resource_metadata or {}
        scopes = metadata.get("scopes_supported")
        now = int(time.time())
        self.claims: dict[str, Any] = {
            "iss": ctx.issuer or "https://ringfence-scan.invalid", "aud": ctx.url, "sub": "ringfence-scan",
            "client_id": "ringfence-scan", "iat": now, "nbf": now - 5, "exp": now + 600,
            "jti": secrets.token_hex(8),
            "scope": " ".join(scope for scope in scopes if isinstance(scope, str)) if isinstance(scopes, list) else "",
        }
        self.server_key = _first_public_key(ctx.jwks)
        self.kid = (self.server_key or {}).get("kid")
        self._own_key = RSAKey.generate_key(2048, parameters={"kid": self.kid} if self.kid else None)

    def signed(self, **overrides: Any) -> str:
        header = {"alg": "RS256", "typ": "at+jwt", **({"kid": self.kid} if self.kid else {})}
        return jwt.encode(header, {**self.claims, **overrides}, self._own_key, algorithms=["RS256"])

    def unsigned(self) -> str:
        return f"{_segment({'alg': 'none', 'typ': 'at+jwt'})}.{_segment(self.claims)}."

    def hs256_with_public_key(self) -> str | None:
        """RFC 8725 §2.1: HMAC keyed with the bytes of the issuer's public key (PEM), for verifiers that
        take the algorithm from the token."""
        if self.server_key is None:
            return None
        pem = _public_pem(self.server_key)
        if pem is None:
            return None
        header = {"alg": "HS256", "typ": "at+jwt", **({"kid": self.kid} if self.kid else {})}
        signing_input = f"{_segment(header)}.{_segment(self.claims)}"
        signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}"


def _first_public_key(jwks: dict[str, Any] | None) -> dict[str, Any] | None:
    keys = (jwks or {}).get("keys")
    if not isinstance(keys, list):
        return None
    return next((key for key in keys if isinstance(key, dict) and key.get("kty") in ("RSA", "EC")), None)


def _public_pem(key: dict[str, Any]) -> bytes | None:
    try:
        imported = RSAKey.import_key(key) if key.get("kty") == "RSA" else ECKey.import_key(key)
        return imported.as_pem(private=False)
    except Exception:  # a key the library cannot read: the variant is skipped, not the scan
        return None


def refusal_of(ctx: ScanContext, token: str, *, in_query: bool = False) -> tuple[str, Exchange] | None:
    """Send ``token`` where the server demands one; ("accepted" | "invalid_token" | "401" | "status", evidence).

    Where initialize itself needs a token, initialize is the request; otherwise a tool that refused
    an anonymous call is called (with arguments it refuses). None when there is nowhere to send it.
    """
    if in_query:
        session = McpSession(ctx.probe, ctx.url, query={"access_token": token})
    else:
        session = McpSession(ctx.probe, ctx.url, token)
    answer = session.initialize()
    if answer.result is None:
        return _refusal(answer.exchange), answer.exchange
    if ctx.anonymous is not None and ctx.anonymous.exchange.status == 401:
        return "accepted", answer.exchange  # initialize needed a token and took this one
    if not ctx.protected_tools:
        return None
    tool = ctx.protected_tools[0]
    call = session.call_tool(tool["name"], harmless_arguments(tool) or {})
    outcome = classify(call)
    if outcome.kind == "ran":
        return "accepted", call.exchange
    return _refusal(call.exchange, outcome.challenge), call.exchange


def _refusal(exchange: Exchange, challenge: dict[str, str] | None = None) -> str:
    if exchange.status >= 500:
        return "server-error"
    if exchange.status != 401:
        return "status"
    parameters = challenge if challenge is not None else challenge_parameters(exchange.header("www-authenticate"))
    return "invalid_token" if parameters.get("error") == "invalid_token" else "401"


def _verdict(check: Check, what: str, result: tuple[str, Exchange] | None, url: str) -> Finding:
    if result is None:
        return skipped(check, "no request of this server needs a token", url)
    kind, exchange = result
    if kind == "invalid_token":
        return passed(check, f"{what}: refused with 401 invalid_token", url)
    if kind == "accepted":
        return failed(check, f"{what} was ACCEPTED", exchange, location=url)
    if kind == "401":
        return failed(check, f"{what}: refused with 401 but without error=\"invalid_token\"", exchange,
                      location=url, severity="low")
    if kind == "server-error":
        return failed(check, f"{what}: the server failed with {exchange.status}", exchange, location=url,
                      severity="high")
    return failed(check, f"{what}: answered {exchange.status}; invalid tokens MUST receive 401", exchange,
                  location=url, severity="medium")


def run(ctx: ScanContext) -> Iterator[Finding]:
    forged_checks = (c.FORGED_MALFORMED, c.FORGED_NONE, c.FORGED_SIGNATURE, c.FORGED_HS256, c.FORGED_EXPIRED,
                     c.FORGED_AUDIENCE, c.TOKEN_IN_QUERY)
    if not ctx.protected:
        for check in forged_checks:
            yield skipped(check, "the server asks for no token (see SC201)")
        return
    forger = Forger(ctx)
    now = int(time.time())
    variants: list[tuple[Check, str, str | None]] = [
        (c.FORGED_MALFORMED, "a malformed token", "ringfence-scan." + secrets.token_urlsafe(24)),
        (c.FORGED_NONE, "an unsigned token (alg none)", forger.unsigned()),
        (c.FORGED_SIGNATURE, "a token signed with a key the issuer never had", forger.signed()),
        (c.FORGED_HS256, "an HS256 token keyed with the issuer's public key", forger.hs256_with_public_key()),
        (c.FORGED_EXPIRED, "an expired token", forger.signed(iat=now - 7200, nbf=now - 7200, exp=now - 3600)),
        (c.FORGED_AUDIENCE, "a token for another audience", forger.signed(aud=OTHER_AUDIENCE)),
    ]
    for check, what, token in variants:
        if token is None:
            yield skipped(check, "the issuer publishes no RSA or EC key to confuse with", ctx.url)
            continue
        try:
            result = refusal_of(ctx, token)
        except OutOfScope as exc:
            yield skipped(check, str(exc), ctx.url)
            continue
        yield _verdict(check, what, result, ctx.url)
        if result is not None and result[0] == "accepted" and ctx.accepted_forgery is None:
            _use_forgery(ctx, token)
    try:
        yield _query_verdict(ctx, refusal_of(ctx, ctx.token or forger.signed(), in_query=True))
    except OutOfScope as exc:
        yield skipped(c.TOKEN_IN_QUERY, str(exc), ctx.url)


def _use_forgery(ctx: ScanContext, token: str) -> None:
    """Without --token the tools of a server that needs one stay unlisted; a forged token it accepted lists
    them, so the tool, widget and transport checks still run (the report says so)."""
    ctx.accepted_forgery = token
    if ctx.token_session is None:
        session = McpSession(ctx.probe, ctx.url, token)
        if session.initialize().result is not None:
            ctx.token_session = session
            ctx.tools = ctx.tools or session.list_tools()
    ctx.notes.append("a forged token was accepted: the tool, widget and transport checks used it")


def _query_verdict(ctx: ScanContext, result: tuple[str, Exchange] | None) -> Finding:
    """A token in the query must be ignored: the request is answered as one without credentials."""
    check = c.TOKEN_IN_QUERY
    if result is None:
        return skipped(check, "no request of this server needs a token", ctx.url)
    kind, exchange = result
    real = "the token given with --token" if ctx.token else "a forged token"
    if kind == "accepted":
        return failed(check, f"{real}, sent as ?access_token=, was ACCEPTED", exchange, location=ctx.url)
    if kind == "invalid_token" and not _anonymous_error(ctx):
        return failed(check, f"{real} sent as ?access_token= was read and judged (error=invalid_token, which a "
                      "request without a token does not get): the server takes tokens from the query string",
                      exchange, location=ctx.url)
    return passed(check, f"{real} in the query string was answered like a request without credentials", ctx.url)


def _anonymous_error(ctx: ScanContext) -> bool:
    """Whether the server's challenge to a request without any token already says error="invalid_token"."""
    if ctx.challenge is None:
        return False
    return challenge_parameters(ctx.challenge.header("www-authenticate")).get("error") == "invalid_token"
