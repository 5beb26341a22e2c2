"""The ``ringfence scan`` command: a black-box security review of any MCP server over HTTP."""

from __future__ import annotations

from typing import Annotated

import typer

from ringfence.cli.options import fail
from ringfence.cli.report_output import FailOn, FailOnOption, FormatOption, OutputOption, ReportFormat, emit


def scan(
    url: Annotated[str, typer.Argument(help="The MCP endpoint, e.g. https://example.com/mcp.")],
    token: Annotated[str | None, typer.Option(
        "--token", envvar="RINGFENCE_SCAN_TOKEN", show_envvar=True,
        help="An access token for this server (ideally with few scopes): adds the audience and per-tool scope "
             "checks. Never printed; prefer the environment variable.")] = None,
    active: Annotated[bool, typer.Option(
        "--active", help="Also send a burst of requests (rate limiting) and malformed, 5 MiB and deeply nested "
                         "bodies (robustness). Use on staging.")] = False,
    burst: Annotated[int, typer.Option(min=1, max=1000, help="Tool calls in the --active burst (on top of "
                                                                "--max-requests).")] = 100,
    max_requests: Annotated[int, typer.Option(min=20, max=2000, help="Stop after this many requests.")] = 200,
    timeout: Annotated[float, typer.Option(min=0.5, max=120, help="Seconds to wait for each answer.")] = 10,
    format: FormatOption = ReportFormat.text,
    fail_on: FailOnOption = FailOn.high,
    output: OutputOption = None,
) -> None:
    """Audit a running MCP server from outside: OAuth discovery, challenges, forged tokens, per-tool scopes
    (with --token), tool annotations and descriptions, widget CSP, transport headers.

    Safe to point at production: it sends requests only to URL and to the authorization server that URL
    advertises, never follows redirects, gives up after --max-requests requests (--timeout seconds each),
    and never runs a tool that could change data (tools are called with arguments their own schema
    refuses; a tool without parameters is called only if it says it is read-only). Exit 0 when nothing
    at or above --fail-on was found, 1 otherwise, 2 when the server cannot be reached.
    """
    from ringfence.review.scan.catalogue import SCAN_CHECKS
    from ringfence.review.scan.runner import ScanError
    from ringfence.review.scan.runner import scan as run_scan

    try:
        report = run_scan(url, token=token, active=active, burst=burst, timeout=timeout, max_requests=max_requests)
    except ScanError as exc:
        fail(str(exc))
    emit(report, SCAN_CHECKS, format=format, fail_on=fail_on, output=output)
