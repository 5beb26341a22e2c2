"""``ringfence review``: the offline review of an app before launch, in one :class:`Report`.

It runs what the single-purpose commands check, on the app and the configuration ``ringfence
serve`` would use here: the lint (``ringfence lint --submission``), ``tools.lock`` (``ringfence lock
--check``), the privacy disclosure (``ringfence privacy --check``), the configuration posture
(:mod:`.posture`), the audit log (``ringfence audit verify``) and the installed packages
(:mod:`.dependencies`). It writes nothing: a missing data folder or database is "not checked", never
created. The check ids and their rules are in :mod:`.preflight_checks`.
"""

from __future__ import annotations

import asyncio
import difflib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from ringfence.app import App
from ringfence.audit.errors import AuditError
from ringfence.audit.log import AuditLog
from ringfence.audit.verification import VerifyReport, has_audit_tables
from ringfence.config import ConfigError, Settings
from ringfence.declaration import DeclarationError
from ringfence.review.dependencies import VulnerabilitySource, dependency_findings, run_pip_audit
from ringfence.review.lint import lint_app
from ringfence.review.lock import LockError, check_lock, default_lock_path
from ringfence.review.posture import (
    environment_secret_findings,
    monitoring_findings,
    private_data_findings,
    public_url_findings,
    unsafe_option_findings,
)
from ringfence.review.preflight_checks import (
    AUDIT_LOG,
    CONFIGURATION,
    DISCLOSURE,
    LINT,
    LOCK,
    MONITORING,
    PRIVATE_DATA,
)
from ringfence.review.report import Check, Finding, Report
from ringfence.review.submission import submission_findings
from ringfence.review.tools import reviewed_tools
from ringfence.review.widget_lint import lint_widgets
from ringfence.store.database import Database
from ringfence.store.existing import NoData, require_database
from ringfence.widgets import check_widgets

DisclosureRenderer = Callable[[App, Settings], str]  # ringfence.privacy.disclosure.disclosure, a layer above
DISCLOSURE_FILE = "PRIVACY.md"
DIFF_LINES = 6


def review_app(
    app: App,
    *,
    app_target: str,
    lock_path: Path | None = None,
    disclosure_path: Path | None = None,
    render_disclosure: DisclosureRenderer | None = None,
    data_dir: Path | None = None,
    database_url: str | None = None,
    public_url: str | None = None,
    environment: Mapping[str, str] | None = None,
    vulnerability_source: VulnerabilitySource | None = run_pip_audit,
) -> Report:
    """Every RV check on ``app`` (loaded from ``app_target``), in catalogue order.

    The settings are read as ``ringfence serve`` reads them (the ``RINGFENCE_*`` variables of this
    process, then ``data_dir``, ``database_url`` and ``public_url``); ``environment`` is where RV206
    looks for secrets (default this process's). ``lock_path`` and ``disclosure_path`` default to
    ``tools.lock`` and ``PRIVACY.md`` next to the app. ``render_disclosure`` None, or
    ``vulnerability_source`` None, leaves RV103, or RV401, not checked.
    """
    environment = os.environ if environment is None else environment
    lock_path = lock_path or default_lock_path(app_target)
    disclosure_path = disclosure_path or lock_path.with_name(DISCLOSURE_FILE)  # the app's folder, as the lock
    report = Report("review", app_target)
    report.add(lint_findings(app))
    report.add(lock_findings(app, lock_path, app_target))
    settings, configuration = load_settings(data_dir=data_dir, database_url=database_url, public_url=public_url)
    report.add(disclosure_findings(app, settings, disclosure_path, render_disclosure, app_target))
    report.add(configuration)
    report.add(public_url_findings(settings.public_url if settings is not None
                                   else (public_url or environment.get("RINGFENCE_PUBLIC_URL"))))
    report.add(private_data_findings(settings.data_dir, _private_files(settings)) if settings is not None
               else [_refused(PRIVATE_DATA)])
    report.add(unsafe_option_findings(app, settings, _source_files(app, app_target)))
    report.add(monitoring_findings(settings) if settings is not None else [_refused(MONITORING)])
    report.add(environment_secret_findings(environment))
    report.add(audit_findings(settings) if settings is not None else [_refused(AUDIT_LOG)])
    report.add(dependency_findings(vulnerability_source))
    report.notes.append(f"{len(app.tools)} tools and {len(app.widgets)} widgets; the settings as `ringfence serve` "
                        "would read them here")
    return report


# --- RV101-RV103 ------------------------------------------------------------------------------------

def lint_findings(app: App) -> list[Finding]:
    """RV101: ``ringfence lint --submission``; an error is high, a warning low."""
    findings: list[Finding] = []
    try:
        check_widgets(app.widgets, app.tools)
        widgets_fit = True
    except DeclarationError as exc:  # serve would refuse to start; the widget lint has nothing sound to read
        findings.append(Finding(LINT, "fail", f"the widgets do not fit the tools: {exc}"))
        widgets_fit = False
    try:
        found = [*lint_app(app), *(lint_widgets(app) if widgets_fit else []), *submission_findings(app)]
    except DeclarationError as exc:
        return [*findings, Finding(LINT, "fail", f"the tools cannot be linted: {exc}")]
    findings += [
        Finding(LINT, "fail", f"{finding.code} {finding.tool + ': ' if finding.tool else ''}{finding.message}",
                _location(finding.file, finding.line),
                severity_override="high" if finding.severity == "error" else "low")
        for finding in found
    ]
    return findings or [Finding(LINT, "pass", f"{len(app.tools)} tools and {len(app.widgets)} widgets: no finding")]


def lock_findings(app: App, lock_path: Path, target: str) -> list[Finding]:
    """RV102: ``ringfence lock --check``; a missing or unreadable lock fails too."""
    try:
        differences = check_lock(app, lock_path)
    except LockError as exc:
        hint = f"; run `ringfence lock {target}` and commit it" if exc.missing else ""
        return [Finding(LOCK, "fail", f"{exc}{hint}", str(lock_path))]
    except DeclarationError as exc:
        return [Finding(LOCK, "fail", f"the lock cannot be computed: {exc}", str(lock_path))]
    if not differences:
        return [Finding(LOCK, "pass", f"{lock_path} is up to date ({len(app.tools)} tools)", str(lock_path))]
    return [Finding(LOCK, "fail", f"tools.lock is out of date: {difference.summary()}", str(lock_path),
                    tuple(difference.diff.splitlines()[:DIFF_LINES]))
            for difference in differences]


def disclosure_findings(app: App, settings: Settings | None, path: Path, render: DisclosureRenderer | None,
                        target: str) -> list[Finding]:
    """RV103: ``ringfence privacy --check``, with the settings in force here (retention periods)."""
    if render is None:
        return [Finding(DISCLOSURE, "skip", "no disclosure renderer was given")]
    if settings is None:
        return [_refused(DISCLOSURE)]
    regenerate = f"run `ringfence privacy {target} --output {path}`"
    expected = render(app, settings)
    try:
        current = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [Finding(DISCLOSURE, "fail", f"there is no privacy disclosure at {path}; {regenerate}", str(path))]
    except (OSError, UnicodeDecodeError) as exc:
        return [Finding(DISCLOSURE, "fail", f"cannot read the privacy disclosure {path}: {exc}", str(path))]
    if current == expected:
        return [Finding(DISCLOSURE, "pass", f"{path} is up to date", str(path))]
    changes = difflib.unified_diff(current.splitlines(), expected.splitlines(), "published", "current", n=0,
                                   lineterm="")
    diff = [line for line in changes if not line.startswith(("---", "+++", "@@"))]
    return [Finding(DISCLOSURE, "fail", f"{path} is stale: it no longer says what the app and its settings do; "
                                        f"{regenerate}", str(path), tuple(diff[:DIFF_LINES]))]


# --- RV201-RV206 ------------------------------------------------------------------------------------

def load_settings(**options: object) -> tuple[Settings | None, list[Finding]]:
    """RV201: the settings ``ringfence serve`` would start with, or the sentence it would refuse them with."""
    try:
        settings = Settings.load(**options)
        Database(settings.resolved_database_url)  # the URL's form and driver; nothing is opened
    except ConfigError as exc:
        return None, [Finding(CONFIGURATION, "fail", f"ringfence serve would refuse to start: {exc}", "environment")]
    return settings, [Finding(CONFIGURATION, "pass", "ringfence serve accepts the settings")]


def _private_files(settings: Settings) -> list[Path]:
    """Files ringfence writes outside ``keys/``, ``*.key`` and ``audit-*``: the SQLite files, the log file."""
    files = []
    sqlite = Database(settings.resolved_database_url).sqlite_file
    if sqlite is not None:
        files += [sqlite, sqlite.with_name(sqlite.name + "-wal"), sqlite.with_name(sqlite.name + "-shm")]
    if settings.log_file is not None:
        files.append(settings.log_file)
    return files


def _source_files(app: App, target: str) -> Iterable[str]:
    """The app's file (a path target) and every file a tool is defined in."""
    location = target.partition(":")[0]
    if location.endswith(".py"):
        yield location
    for tool in reviewed_tools(app):
        if tool.source[0] is not None:
            yield tool.source[0]


# --- RV301 ------------------------------------------------------------------------------------------

def audit_findings(settings: Settings) -> list[Finding]:
    """RV301: ``ringfence audit verify`` on the configured database; "not checked" when there is none yet."""

    async def verify() -> VerifyReport | None:
        database = Database(settings.resolved_database_url)
        try:
            await require_database(database, settings.data_dir, settings.database_url)
            if not await has_audit_tables(database):
                return None
            return await AuditLog(database, settings.data_dir).verify()
        finally:
            await database.close()

    try:
        verified = asyncio.run(verify())
    except NoData as exc:
        return [Finding(AUDIT_LOG, "skip", f"no audit log yet: {exc}")]
    except AuditError as exc:  # checkpoints but no key to check them with: as suspect as damage
        return [Finding(AUDIT_LOG, "fail", f"the audit log cannot be verified: {exc}")]
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return [Finding(AUDIT_LOG, "skip", f"cannot read the audit log ({reason})")]
    if verified is None:
        return [Finding(AUDIT_LOG, "skip", "this database holds no audit log yet")]
    if not verified.ok:
        return [Finding(AUDIT_LOG, "fail", verified.summary(), evidence=(str(verified.damage),))]
    return [Finding(AUDIT_LOG, "pass", verified.summary())]


# --- shared -----------------------------------------------------------------------------------------

def _refused(check: Check) -> Finding:
    return Finding(check, "skip", f"ringfence refuses the configuration ({CONFIGURATION.id})")


def _location(file: str | None, line: int | None) -> str:
    if not file:
        return ""
    try:
        relative = os.path.relpath(file)
    except ValueError:  # another drive on Windows
        relative = file
    where = file if relative.startswith("..") else relative
    return f"{where}:{line}" if line is not None else where
