"""The ``ringfence lint`` and ``ringfence lock`` commands.

Plain functions with Typer annotations; ``ringfence.cli`` registers them.

Exit codes:
  lint          0 no errors (warnings too, unless --strict); 1 an error (or, with --strict, any finding);
                2 the app could not be loaded, bad options, or the --justifications file could not be written.
  lock          0 written; 2 the app could not be loaded or the lock could not be written.
  lock --check  0 up to date; 1 stale or missing (the differences are printed); 2 the app could not
                be loaded or the lock is not a readable tools.lock.
"""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ringfence.cli.options import fail, load_app_or_fail
from ringfence.declaration import DeclarationError

if TYPE_CHECKING:
    from ringfence.review.lint import LintFinding

TargetArgument = Annotated[str, typer.Argument(help="The app: path/to/app.py[:attr] or package.module[:attr].")]


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def lint(
    target: TargetArgument,
    format: Annotated[OutputFormat, typer.Option("--format", help="text or json.")] = OutputFormat.text,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too.")] = False,
    ignore: Annotated[
        list[str] | None, typer.Option("--ignore", help="A code to skip, e.g. RF004 (repeatable).")
    ] = None,
    submission: Annotated[
        bool, typer.Option("--submission", help="Also warn about what ChatGPT's app review requires (RF2xx).")
    ] = False,
    justifications: Annotated[
        Path | None, typer.Option("--justifications", help="Write the Apps SDK tool-hint-justifications.json for "
                                                           "app submission to this file (implies --submission).")
    ] = None,
) -> None:
    """Check tools (names, descriptions, declarations) and widgets (HTML, scripts, CSP) for poisoning and
    mistakes; exit 1 on errors. With --submission or --justifications, also what app review requires."""
    from ringfence.review.lint import lint_app
    from ringfence.review.submission import hint_justifications, submission_findings
    from ringfence.review.widget_lint import lint_widgets
    from ringfence.widgets import check_widgets

    app = load_app_or_fail(target)
    try:
        check_widgets(app.widgets, app.tools)
        findings = [*lint_app(app), *lint_widgets(app)]
        if submission or justifications is not None:
            findings += submission_findings(app)
    except DeclarationError as exc:
        fail(str(exc))
    if justifications is not None:
        try:
            justifications.write_text(json.dumps(hint_justifications(app), indent=2, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {justifications}: {exc}")
        typer.echo(f"wrote {justifications}: the annotation hints of {len(app.tools)} tools, justified", err=True)
    skipped = {code.upper() for code in ignore or ()}
    findings = [finding for finding in findings if finding.code not in skipped]
    if format == OutputFormat.json:
        typer.echo(json.dumps([finding.to_dict() for finding in findings], indent=2, ensure_ascii=False))
    else:
        for finding in findings:
            typer.echo(_text_line(finding))
        errors = sum(1 for finding in findings if finding.severity == "error")
        warnings = len(findings) - errors
        typer.echo(f"{len(app.tools)} tools and {len(app.widgets)} widgets checked: {errors} errors, "
                   f"{warnings} warnings", err=True)
    if any(finding.severity == "error" for finding in findings) or (strict and findings):
        raise typer.Exit(1)


def _text_line(finding: LintFinding) -> str:
    where = _relative(finding.file) if finding.file else ""
    if where and finding.line is not None:
        where += f":{finding.line}"
    severity = "warning: " if finding.severity == "warning" else ""
    return f"{where + ': ' if where else ''}{finding.code} {finding.tool}: {severity}{finding.message}"


def _relative(file: str) -> str:
    try:
        relative = os.path.relpath(file)
    except ValueError:  # another drive on Windows
        return file
    return file if relative.startswith("..") else relative


def lock(
    target: TargetArgument,
    check: Annotated[
        bool, typer.Option("--check", help="Compare with the lock instead of writing it; exit 1 if stale.")
    ] = False,
    path: Annotated[
        Path | None, typer.Option("--path", help="The lock file. [default: tools.lock next to the app file]")
    ] = None,
) -> None:
    """Write tools.lock, the hash and contract of every tool; with --check, fail when it is out of date."""
    from ringfence.review.lock import LockError, check_lock, default_lock_path, write_lock

    app = load_app_or_fail(target)
    lock_path = path or default_lock_path(target)
    if not check:
        try:
            document = write_lock(app, lock_path)
        except DeclarationError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"cannot write {lock_path}: {exc}")
        typer.echo(f"wrote {lock_path}: {len(document['tools'])} tools, {document['digest']}")
        return
    try:
        differences = check_lock(app, lock_path)
    except DeclarationError as exc:
        fail(str(exc))
    except LockError as exc:
        if not exc.missing:
            fail(str(exc))
        typer.echo(f"{lock_path}: missing; run `ringfence lock {target}` and commit it")
        raise typer.Exit(1) from None
    if not differences:
        typer.echo(f"{lock_path}: up to date ({len(app.tools)} tools)")
        return
    typer.echo(f"{lock_path}: out of date; review the changes, then run `ringfence lock {target}`")
    for difference in differences:
        typer.echo(f"  {difference.summary()}")
        if difference.diff:
            typer.echo("\n".join("    " + line for line in difference.diff.splitlines()))
    raise typer.Exit(1)
