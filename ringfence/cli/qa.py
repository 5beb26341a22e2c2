"""The ``ringfence qa`` commands: checks for a team's QA, run against the app served in this process.

``qa injections`` fires prompt injections (ringfence's corpus, plus the team's file) through every
free-text argument of every tool and reports what became of each (ringfence/cli/qa_injections.py).

Exit codes:
  injections  0 every prompt was refused, flagged or held; 1 a prompt reached a tool unflagged, or
              a call could not be judged (fail closed); 2 bad input: the app or the prompts file
              could not be loaded, the file is empty, the app has no tools.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ringfence.cli.options import fail, load_app_or_fail

if TYPE_CHECKING:
    from ringfence.cli.qa_injections import Report

qa_cli = typer.Typer(help="Checks for QA, against the app served in this process on a throwaway data folder.",
                     no_args_is_help=True)
EXCERPT_CHARS = 60


@qa_cli.command("injections")
def injections(
    target: Annotated[str, typer.Argument(help="The app: path/to/app.py[:attr] or package.module[:attr].")],
    prompts: Annotated[
        Path | None, typer.Option("--prompts", help="The team's prompts, added to ringfence's: one a line, or "
                                                    'JSON lines ({"prompt": ..., "family": ...}) in a .jsonl file.')
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON document.")] = False,
    include_open_world: Annotated[
        bool, typer.Option("--include-open-world", help="Also call open-world tools (their calls reach other "
                                                        "systems, for real).")
    ] = False,
) -> None:
    """Fire injection prompts through every string argument of every tool and report how each was handled
    (refused, flagged, held for confirmation, or reached the tool unflagged); exit 1 if any reached a tool
    unflagged. The app runs in this process on a throwaway SQLite folder, never your data; its tools run."""
    from ringfence.cli.qa_injections import QaInputError, run, shipped_prompts, team_prompts
    from ringfence.declaration import DeclarationError

    app = load_app_or_fail(target)
    try:
        corpus = shipped_prompts() + (team_prompts(prompts) if prompts is not None else [])
        logging.disable(logging.CRITICAL)  # the served app's own log lines are not the report
        try:
            report = run(app, corpus, include_open_world=include_open_world)
        finally:
            logging.disable(logging.NOTSET)
    except (QaInputError, DeclarationError) as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(report_document(report), ensure_ascii=False, indent=2))
    else:
        print_report(report)
    if report.reached_unflagged() or report.errors():
        raise typer.Exit(1)


def report_document(report: Report) -> dict[str, Any]:
    """The report as JSON: the counts, what was skipped, and every trial."""
    from ringfence.cli.qa_injections import REACHED_UNFLAGGED

    return {
        "app": report.app,
        "prompts": report.prompts,
        "counts": report.counts(),
        "passed": not (report.reached_unflagged() or report.errors()),
        "skipped": [{"tool": skipped.tool, "reason": skipped.reason} for skipped in report.skipped],
        "trials": [{"tool": trial.tool, "argument": trial.argument, "outcome": trial.call.outcome,
                    "detail": trial.call.detail, "rules": list(trial.call.rules), "family": trial.prompt.family,
                    "source": trial.prompt.source, "prompt": trial.prompt.text,
                    "reached_tool_unflagged": trial.call.outcome == REACHED_UNFLAGGED}
                   for trial in report.trials],
    }


def print_report(report: Report) -> None:
    """One row per tool argument with the count of each outcome, then every prompt that got through."""
    from rich.console import Console
    from rich.table import Table

    from ringfence.cli.qa_injections import ERROR, FLAGGED, HELD, OUTCOMES, REACHED_UNFLAGGED, REFUSED

    console = Console(highlight=False)
    table = Table(title=f"Injection prompts through {report.app} ({report.prompts} prompts)")
    table.add_column("tool", overflow="fold")
    table.add_column("argument", overflow="fold")
    headings = {REFUSED: "refused", FLAGGED: "flagged", HELD: "held", REACHED_UNFLAGGED: "reached unflagged",
                ERROR: "error"}
    for outcome in OUTCOMES:
        table.add_column(headings[outcome], justify="right")
    rows: dict[tuple[str, str], dict[str, int]] = {}
    for trial in report.trials:
        counts = rows.setdefault((trial.tool, trial.argument), dict.fromkeys(OUTCOMES, 0))
        counts[trial.call.outcome] += 1
    for (tool, argument), counts in rows.items():
        cells = [str(counts[outcome]) for outcome in OUTCOMES]
        style = "bold red" if counts[REACHED_UNFLAGGED] or counts[ERROR] else None
        table.add_row(tool, argument, *cells, style=style)
    console.print(table)
    for skipped in report.skipped:
        console.print(f"skipped {skipped.tool}: {skipped.reason}", markup=False)
    for trial in report.reached_unflagged():
        console.print(f"REACHED UNFLAGGED {trial.tool}.{trial.argument} ({trial.call.detail}) "
                      f"<- {trial.prompt.source} [{trial.prompt.family}] {excerpt(trial.prompt.text)}", markup=False)
    for trial in report.errors():
        console.print(f"ERROR {trial.tool}.{trial.argument} <- {trial.prompt.source}: {trial.call.detail}",
                      markup=False)
    counts = report.counts()
    if report.reached_unflagged() or report.errors():
        console.print(f"FAILED: {counts[REACHED_UNFLAGGED]} prompt(s) reached a tool with no injection finding "
                      f"recorded, {counts[ERROR]} call(s) could not be judged. A prompt that reaches a tool unflagged "
                      "is not seen by monitoring (no injection.flagged record, no alert): add a rule or a classifier "
                      "that catches it (ringfence.detect), or bound the argument (an enum, a pattern, max_length) "
                      "so that screening refuses it.", markup=False)
    else:
        console.print(f"passed: {len(report.trials)} calls, every prompt refused ({counts[REFUSED]}), flagged "
                      f"({counts[FLAGGED]}) or held for confirmation ({counts[HELD]}).", markup=False)


def excerpt(text: str) -> str:
    """The prompt on one line, shortened, with its invisible characters shown as escapes."""
    shown = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return shown if len(shown) <= EXCERPT_CHARS else shown[:EXCERPT_CHARS - 1] + "…"
