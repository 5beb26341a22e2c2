"""The ``ringfence review`` command: the offline pre-launch review of an app, in one report.

A plain function with Typer annotations; ``ringfence.cli`` registers it. The checks are in
``ringfence/review/preflight.py`` and their catalogue in ``ringfence/review/preflight_checks.py``.

Exit codes (as ``ringfence scan``): 0 no failure at or above ``--fail-on`` (default high); 1 at
least one; 2 the review could not start (no app, an app that cannot be loaded, bad options).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ringfence.cli.options import DatabaseOption, DataDirOption, fail, load_app_or_fail
from ringfence.cli.report_output import FailOn, FailOnOption, FormatOption, OutputOption, ReportFormat, emit

DEFAULT_APP = "app.py"


def review(
    target: Annotated[str | None, typer.Argument(
        help="The app: path/to/app.py[:attr] or package.module[:attr]. [default: app.py in this folder]")] = None,
    format: FormatOption = ReportFormat.text,
    fail_on: FailOnOption = FailOn.high,
    output: OutputOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
    public_url: Annotated[str | None, typer.Option(
        help="The origin clients will use, as given to serve. [env RINGFENCE_PUBLIC_URL]")] = None,
    lock: Annotated[Path | None, typer.Option(
        "--lock", help="The tools.lock to compare with. [default: tools.lock next to the app]")] = None,
    disclosure: Annotated[Path | None, typer.Option(
        "--disclosure", help="The published privacy disclosure to compare with. [default: PRIVACY.md next to "
                             "the app]")] = None,
    skip_dependencies: Annotated[bool, typer.Option(
        "--skip-dependencies", help="Do not run pip-audit on the installed packages (RV401 is then not "
                                    "checked).")] = False,
    pip_audit_report: Annotated[Path | None, typer.Option(
        "--pip-audit-report", help="Read this `pip-audit --format json` output (e.g. from an earlier CI step) "
                                   "instead of running pip-audit.")] = None,
) -> None:
    """Review an app before launch, offline: lint, tools.lock, privacy disclosure, configuration, audit log
    and known vulnerabilities in the installed packages; exit 1 on a finding at --fail-on or worse."""
    from ringfence.privacy.disclosure import disclosure as render_disclosure
    from ringfence.review.dependencies import read_pip_audit_report, run_pip_audit
    from ringfence.review.preflight import review_app
    from ringfence.review.preflight_checks import PREFLIGHT_CHECKS

    if target is None:
        if not Path(DEFAULT_APP).is_file():
            fail(f"no APP given and no {DEFAULT_APP} in this folder; give the app: path/to/app.py[:attr] or "
                 "package.module[:attr]")
        target = DEFAULT_APP
    if skip_dependencies and pip_audit_report is not None:
        fail("give --skip-dependencies or --pip-audit-report, not both")
    if pip_audit_report is not None and not pip_audit_report.is_file():
        fail(f"there is no pip-audit report at {pip_audit_report}")
    app = load_app_or_fail(target)
    source = None if skip_dependencies else (
        run_pip_audit if pip_audit_report is None else read_pip_audit_report(pip_audit_report))
    report = review_app(app, app_target=target, lock_path=lock, disclosure_path=disclosure,
                        render_disclosure=render_disclosure, data_dir=data_dir, database_url=database_url,
                        public_url=public_url, vulnerability_source=source)
    emit(report, PREFLIGHT_CHECKS, format=format, fail_on=fail_on, output=output)
