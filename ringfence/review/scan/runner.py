"""``scan(url)``: every check group in order, on one bounded probe, into one report."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from ringfence.review.report import Finding, Report
from ringfence.review.scan import active, challenges, discovery, scopes, tokens, tools, transport, widgets
from ringfence.review.scan.catalogue import SCAN_CHECKS
from ringfence.review.scan.context import ScanContext, skipped
from ringfence.review.scan.probe import OutOfScope, Probe, Unreachable, origin

Group = Callable[[ScanContext], Iterator[Finding]]
# Order matters: discovery reads the challenge; the checks after it need the tools a token may list.
GROUPS: tuple[tuple[str, Group], ...] = (
    ("discovery", discovery.run), ("token", scopes.run), ("challenges", challenges.run),
    ("forged tokens", tokens.run), ("tools", tools.run), ("widgets", widgets.run),
    ("transport", transport.run), ("active", active.run),
)


class ScanError(Exception):
    """The scan could not start: a URL that is not http(s), or a server that does not answer at all."""


def scan(url: str, *, token: str | None = None, active: bool = False, burst: int = 100, timeout: float = 10,
         max_requests: int = 200) -> Report:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment or parts.query:
        raise ScanError(f"{url!r} is not an MCP URL (http(s)://host[:port]/path, no query or fragment)")
    limit = max_requests + (burst if active else 0)  # the burst has a bound of its own
    probe = Probe(url, timeout=timeout, max_requests=limit)
    ctx = ScanContext(url=url, probe=probe, token=token, active=active, burst=burst)
    report = Report("scan", url)
    stopped: list[str] = []  # why a group ended early: the reason its unreported checks were not run
    try:
        if not challenges.probe_anonymously(ctx):
            raise ScanError(f"{url} does not answer (connection refused, TLS failure or timeout after {timeout} s)")
        _require_mcp(ctx)
        for name, group in GROUPS:
            try:
                report.add(group(ctx))
            except (OutOfScope, Unreachable) as exc:
                stopped.append(f"{name} checks stopped early: {exc}")
    finally:
        probe.close()
    report.notes.extend([*stopped, *ctx.notes])
    _mark_unrun(report, "; ".join(stopped) or "not reached")
    reached = sorted({origin(url)} | ({origin(ctx.issuer)} if ctx.issuer else set()))
    report.notes.append(f"{probe.sent} requests sent (limit {limit}), only to {', '.join(reached)}")
    return report


def _require_mcp(ctx: ScanContext) -> None:
    """Stop before judging something that is not an MCP endpoint: every finding would be noise."""
    assert ctx.anonymous is not None
    exchange = ctx.anonymous.exchange
    if exchange.status in (301, 302, 303, 307, 308):
        raise ScanError(f"{ctx.url} redirects to {exchange.header('location') or '(no location)'}; the scanner "
                        "follows no redirects: scan the URL clients end up at")
    if exchange.status != 401 and ctx.anonymous.message is None:
        kind = exchange.header("content-type") or "no content type"
        raise ScanError(f"{ctx.url} is not an MCP endpoint: initialize was answered {exchange.status} ({kind}) "
                        "with no JSON-RPC response")


def _mark_unrun(report: Report, reason: str) -> None:
    """A check a group never reached is listed as not checked, never silently missing."""
    reported = {finding.check.id for finding in report.findings}
    report.add(skipped(check, reason, report.target) for check in SCAN_CHECKS if check.id not in reported)
