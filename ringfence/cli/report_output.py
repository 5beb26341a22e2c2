"""How ``ringfence scan`` and ``ringfence review`` print a report and choose their exit code.

Exit codes (both commands): 0 no failure at or above ``--fail-on``; 1 at least one; 2 the run itself
could not start (bad options, unreachable target, an app that cannot be loaded).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ringfence.review.report import Check, Report, Severity


class ReportFormat(StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"


class FailOn(StrEnum):
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


FormatOption = Annotated[ReportFormat, typer.Option("--format", help="text (a table), json or sarif (SARIF 2.1.0).")]
FailOnOption = Annotated[FailOn, typer.Option("--fail-on", help="Exit 1 when a finding is at least this severe.")]
OutputOption = Annotated[Path | None, typer.Option("--output", "-o", help="Write the report to this file "
                                                                          "instead of standard output.")]
_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


def emit(report: Report, checks: Sequence[Check], *, format: ReportFormat, fail_on: FailOn,
         output: Path | None = None) -> None:
    """Print (or write) the report in ``format``, then exit 1 if it fails at ``fail_on``."""
    from ringfence import __version__

    if format == ReportFormat.text:
        text = render_text(report)
    elif format == ReportFormat.json:
        text = json.dumps(report.to_dict(), indent=2, ensure_ascii=False)
    else:
        text = json.dumps(report.to_sarif(__version__, checks), indent=2, ensure_ascii=False)
    if output is None:
        typer.echo(text)
    else:
        try:
            output.write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            typer.echo(f"ringfence: error: cannot write {output}: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(report.summary(), err=True)
    threshold: Severity = fail_on.value  # type: ignore[assignment]
    if report.fails_at(threshold):
        raise typer.Exit(1)


def render_text(report: Report) -> str:
    """The failures as a Rich table (worst first) with evidence, what was not checked and why, the summary."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=120, record=True, force_terminal=False, file=io.StringIO())
    failures = report.failures
    if failures:
        table = Table(title=f"ringfence {report.tool}: {report.target}", show_lines=True, title_justify="left")
        table.add_column("Id", no_wrap=True)
        table.add_column("Severity", no_wrap=True)
        table.add_column("Finding")
        for finding in failures:
            detail = f"[bold]{finding.check.title}[/bold]: {_escape(finding.message)}"
            detail += "".join(f"\n[dim]evidence:[/dim] {_escape(line)}" for line in finding.evidence[:3])
            detail += f"\n[dim]rule:[/dim] {_escape(finding.check.rule)}\n[dim]fix:[/dim] {_escape(finding.check.fix)}"
            table.add_row(finding.check.id, f"[{_STYLE[finding.severity]}]{finding.severity}[/]", detail)
        console.print(table)
    unchecked: dict[str, list[str]] = {}
    for finding in report.findings:
        if finding.outcome == "skip" and finding.check.id not in unchecked.get(finding.message, []):
            unchecked.setdefault(finding.message, []).append(finding.check.id)
    for reason, ids in unchecked.items():
        console.print(f"[dim]not checked ({_escape(reason)}): {', '.join(ids)}[/dim]")
    for note in report.notes:
        console.print(f"[dim]{_escape(note)}[/dim]")
    console.print(report.summary())
    return console.export_text().rstrip()


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
