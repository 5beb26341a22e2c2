"""Transport: DNS rebinding (Host), Origin, CORS, security headers on HTML pages, HTTPS and HSTS."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

from ringfence.review.report import Check, Finding
from ringfence.review.scan import catalogue as c
from ringfence.review.scan.context import ScanContext, failed, is_loopback, passed, skipped
from ringfence.review.scan.probe import Exchange, OutOfScope
from ringfence.review.scan.wire import McpSession

FOREIGN_HOST = "rebind.ringfence-scan.invalid"
FOREIGN_ORIGIN = "https://attacker.ringfence-scan.invalid"


def run(ctx: ScanContext) -> Iterator[Finding]:
    yield from _check_https(ctx)
    try:
        yield _foreign_header(ctx, c.DNS_REBINDING, {"host": FOREIGN_HOST}, "a foreign Host header")
        yield _foreign_header(ctx, c.FOREIGN_ORIGIN, {"origin": FOREIGN_ORIGIN}, "a foreign Origin")
        yield from _check_cors(ctx)
        yield from _check_pages(ctx)
    except OutOfScope as exc:
        yield skipped(c.SECURITY_HEADERS, str(exc), ctx.url)
    yield from _check_hsts(ctx)


def _initialize(ctx: ScanContext, headers: dict[str, str]) -> Exchange:
    return McpSession(ctx.probe, ctx.url, ctx.credential).initialize_request(headers=headers).exchange


def _foreign_header(ctx: ScanContext, check: Check, headers: dict[str, str], what: str) -> Finding:
    """The request must be refused before anything else (421, 400 or 403); a 401 shows nothing either way."""
    exchange = _initialize(ctx, headers)
    if exchange.status in (400, 403, 421):
        return passed(check, f"{what} is refused with {exchange.status}", ctx.url)
    if exchange.status == 401:
        return skipped(check, f"{what} got 401: the server asked for a token first, so whether it checks the "
                       "header is not visible; rerun with --token", ctx.url)
    if exchange.status < 300:
        return failed(check, f"{what} is served ({exchange.status})", exchange, location=ctx.url)
    return failed(check, f"{what} got {exchange.status}, not a refusal", exchange, location=ctx.url,
                  severity="low")


def _check_cors(ctx: ScanContext) -> Iterator[Finding]:
    exchange = ctx.probe.request("OPTIONS", ctx.url, headers={
        "origin": FOREIGN_ORIGIN, "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type"})
    allowed = exchange.header("access-control-allow-origin")
    credentials = exchange.header("access-control-allow-credentials").lower() == "true"
    if credentials and allowed in ("*", FOREIGN_ORIGIN):
        yield failed(c.CORS_CREDENTIALS, f"a preflight from {FOREIGN_ORIGIN} is answered with "
                     f"Access-Control-Allow-Origin: {allowed} and credentials allowed", exchange, location=ctx.url)
    else:
        yield passed(c.CORS_CREDENTIALS, f"allow-origin {allowed or '(none)'}, credentials "
                     f"{'allowed' if credentials else 'not allowed'}", ctx.url)


def _check_pages(ctx: ScanContext) -> Iterator[Finding]:
    """The HTML pages a browser opens: the server's root and the authorization endpoint (a bare GET)."""
    parts = urlsplit(ctx.url)
    pages = [urlunsplit((parts.scheme, parts.netloc, "/", "", ""))]
    endpoint = (ctx.server_metadata or {}).get("authorization_endpoint")
    if isinstance(endpoint, str) and ctx.probe.allows(endpoint):
        pages.append(endpoint)
    html = [exchange for exchange in ctx.seen if exchange.header("content-type").startswith("text/html")]
    for page in pages:
        exchange = ctx.keep(ctx.probe.request("GET", page, headers={"accept": "text/html"}))
        if exchange.header("content-type").startswith("text/html"):
            html.append(exchange)
    if not html:
        yield skipped(c.SECURITY_HEADERS, "no HTML page found at " + ", ".join(pages), ctx.url)
        return
    bare = []
    for exchange in html:
        missing = []
        csp = exchange.header("content-security-policy")
        if "frame-ancestors" not in csp and not exchange.header("x-frame-options"):
            missing.append("frame-ancestors / X-Frame-Options")
        if exchange.header("x-content-type-options").lower() != "nosniff":
            missing.append("X-Content-Type-Options: nosniff")
        if missing:
            bare.append((exchange, missing))
    if bare:
        yield failed(c.SECURITY_HEADERS, "; ".join(f"{exchange.url} lacks {', '.join(missing)}"
                                                   for exchange, missing in bare),
                     *(exchange for exchange, _ in bare[:2]), location=bare[0][0].url)
    else:
        yield passed(c.SECURITY_HEADERS, f"{len(html)} HTML pages carry the headers", ctx.url)


def _check_https(ctx: ScanContext) -> Iterator[Finding]:
    if ctx.url.startswith("https://"):
        yield passed(c.HTTPS_ONLY, "https", ctx.url)
    elif is_loopback(ctx.url):
        yield passed(c.HTTPS_ONLY, "plain http on loopback (development)", ctx.url)
    else:
        yield failed(c.HTTPS_ONLY, f"{ctx.url} is plain http on a network address: tokens cross the network "
                     "readable", location=ctx.url)


def _check_hsts(ctx: ScanContext) -> Iterator[Finding]:
    secure = [exchange for exchange in ctx.seen if exchange.url.startswith("https://")]
    if not secure:
        yield skipped(c.HSTS, "the server is not reached over https", ctx.url)
        return
    bare = [exchange for exchange in secure if "max-age" not in exchange.header("strict-transport-security")]
    if bare:
        yield failed(c.HSTS, f"{len(bare)} of {len(secure)} https answers lack Strict-Transport-Security",
                     *bare[:2], location=ctx.url)
    else:
        yield passed(c.HSTS, "every https answer carries HSTS", ctx.url)
