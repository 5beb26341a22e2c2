"""``ringfence review``: the offline pre-launch review, run as the real command (``python -m ringfence review``).

The dependency check (RV401) never reaches the network here: the commands take a recorded pip-audit
answer (``--pip-audit-report``) or ``--skip-dependencies``, and the unreachable case runs the real
pip-audit behind a proxy that refuses connections. The recorded answers in ``data/``:
``pip-audit-vulnerable.json`` and ``pip-audit-clean.json`` were written by pip-audit 2.10's own JSON
formatter from published advisories (Jinja GHSA-h5c8-rqwp-cp95 and GHSA-h75v-3vvj-5mfj, Requests
GHSA-9wx4-h78v-vm56); ``pip-audit-unknown-to-service.json`` is a real run against a package index that
knows none of the installed versions.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from ringfence.audit.log import AuditLog
from ringfence.review.dependencies import (
    DependenciesNotChecked,
    dependency_findings,
    parse_pip_audit,
    read_pip_audit_report,
    run_pip_audit,
)
from ringfence.review.posture import environment_secret_findings, private_data_findings
from ringfence.review.preflight_checks import PREFLIGHT_CHECKS
from ringfence.store.database import Database
from tests.audit.conftest import fill, sql
from tests.review.test_commands import CLEAN, POISONED, app_file
from tests.support.cli import Outcome, run_ringfence_many
from tests.support.serve import CONTACTS_APP, REPO

DATA = Path(__file__).parent / "data"
VULNERABLE = DATA / "pip-audit-vulnerable.json"
CLEAN_ANSWER = DATA / "pip-audit-clean.json"
UNKNOWN_TO_SERVICE = DATA / "pip-audit-unknown-to-service.json"
LAUNCH = {"RINGFENCE_PUBLIC_URL": "https://contacts.example.com"}


def review(tmp_path: Path, *args: str | Path, env: dict[str, str] | None = None) -> Outcome:
    """``python -m ringfence review ARGS`` in the repository folder, with ``env`` added to a clean environment."""
    runs = tmp_path / "runs"
    runs.mkdir(exist_ok=True)
    return run_ringfence_many({"review": (["review", *map(str, args)], env or {})}, runs)["review"]


def findings(outcome: Outcome) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(outcome.stdout)["findings"]
    return found


def outcomes(outcome: Outcome, check: str) -> list[dict[str, Any]]:
    return [finding for finding in findings(outcome) if finding["id"] == check]


def failed(outcome: Outcome, check: str) -> list[dict[str, Any]]:
    return [finding for finding in outcomes(outcome, check) if finding["outcome"] == "fail"]


def contacts_copy(tmp_path: Path) -> Path:
    """The reference app's folder (app, widgets, tools.lock, PRIVACY.md) copied, to change one file of it."""
    folder = tmp_path / "contacts"
    shutil.copytree(REPO / "examples" / "contacts", folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder / "app.py"


def with_audit_log(data_dir: Path, count: int, tamper: str | None = None) -> None:
    """An audit log of ``count`` records in ``data_dir``'s SQLite database, as a server leaves it; then ``tamper``."""

    async def write() -> None:
        database = Database(f"sqlite+aiosqlite:///{data_dir / 'ringfence.db'}")
        try:
            await database.start()
            await fill(AuditLog(database, data_dir), count)
            if tamper is not None:
                await sql(database, tamper)
        finally:
            await database.close()

    asyncio.run(write())


# --- the reference app --------------------------------------------------------------------------------

def test_reference_app_reviews_with_no_finding_above_low(tmp_path: Path) -> None:
    outcome = review(tmp_path, CONTACTS_APP, "--format", "json", "--fail-on", "medium", "--data-dir",
                     tmp_path / "data", "--pip-audit-report", CLEAN_ANSWER, env=LAUNCH)
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr
    assert [finding for finding in findings(outcome) if finding["outcome"] == "fail"
            and finding["severity"] not in ("info", "low")] == []
    for check in ("RV101", "RV102", "RV103", "RV201", "RV202", "RV204", "RV205", "RV401"):
        assert {finding["outcome"] for finding in outcomes(outcome, check)} == {"pass"}, check
    # Nothing was written: the data folder and database a server would make are "not checked".
    assert {finding["outcome"] for finding in outcomes(outcome, "RV301")} == {"skip"}
    assert not (tmp_path / "data").exists()


def test_text_report_lists_failures_in_a_table_and_says_what_was_not_checked(tmp_path: Path) -> None:
    outcome = review(tmp_path, CONTACTS_APP, "--skip-dependencies", "--data-dir", tmp_path / "data",
                     env={**LAUNCH, "RINGFENCE_ALLOW_LOOPBACK_CLIENT_METADATA": "true"})
    assert outcome.returncode == 1
    assert f"ringfence review: {CONTACTS_APP}" in outcome.stdout
    assert "│ RV204 │ high" in outcome.stdout and "allow_loopback_client_metadata" in outcome.stdout
    assert "not checked (--skip-dependencies was given): RV401" in outcome.stdout
    assert outcome.stdout.rstrip().splitlines()[-1].startswith(f"{CONTACTS_APP}: 1 high")


# --- RV1xx: the app -----------------------------------------------------------------------------------

def test_poisoned_tool_description_is_a_high_lint_finding_with_its_source_line(tmp_path: Path) -> None:
    outcome = review(tmp_path, app_file(tmp_path, POISONED), "--format", "json", "--skip-dependencies")
    assert outcome.returncode == 1
    poisoned = [finding for finding in failed(outcome, "RV101") if finding["message"].startswith("RF001 list_notes: ")]
    assert len(poisoned) == 1 and poisoned[0]["severity"] == "high"
    file, line = poisoned[0]["location"].rsplit(":", 1)
    assert file.endswith("corpus.py") and line.isdigit()


def test_stale_tools_lock_fails_naming_the_changed_tool_and_field(tmp_path: Path) -> None:
    app = contacts_copy(tmp_path)
    lock = json.loads((app.parent / "tools.lock").read_text())
    lock["tools"]["search_contacts"]["contract"]["description"] = "An older description."
    (app.parent / "tools.lock").write_text(json.dumps(lock))
    outcome = review(tmp_path, app, "--format", "json", "--skip-dependencies", env=LAUNCH)
    assert outcome.returncode == 1  # high: the default --fail-on
    [stale] = failed(outcome, "RV102")
    assert stale["severity"] == "high"
    assert stale["message"] == "tools.lock is out of date: search_contacts: changed description"
    assert any("An older description." in line for line in stale["evidence"])


def test_missing_tools_lock_fails_and_says_how_to_write_it(tmp_path: Path) -> None:
    app = app_file(tmp_path, CLEAN)
    outcome = review(tmp_path, app, "--format", "json", "--skip-dependencies")
    [missing] = failed(outcome, "RV102")
    assert missing["message"] == f"there is no lock file at {tmp_path / 'tools.lock'}; run `ringfence lock {app}` " \
                                 "and commit it"


def test_privacy_disclosure_stale_for_the_retention_settings_in_force_fails(tmp_path: Path) -> None:
    outcome = review(tmp_path, CONTACTS_APP, "--format", "json", "--skip-dependencies",
                     env={**LAUNCH, "RINGFENCE_RETENTION_AUDIT_PAYLOAD_DAYS": "30"})
    [stale] = failed(outcome, "RV103")
    assert stale["severity"] == "medium"
    assert stale["message"].startswith(f"{REPO / 'examples' / 'contacts' / 'PRIVACY.md'} is stale")
    assert any(line.startswith("+") and "30 days" in line for line in stale["evidence"])


# --- RV2xx: configuration -------------------------------------------------------------------------------

def test_plain_http_public_url_fails_as_refused_configuration_and_not_https(tmp_path: Path) -> None:
    outcome = review(tmp_path, CONTACTS_APP, "--format", "json", "--skip-dependencies",
                     "--public-url", "http://mcp.example.com")
    assert outcome.returncode == 1
    assert "uses plain http; OAuth 2.1 requires https" in failed(outcome, "RV201")[0]["message"]
    assert failed(outcome, "RV202")[0]["message"].startswith("the public URL http://mcp.example.com is not https")
    # What needs the refused settings is "not checked", never passed.
    for check in ("RV103", "RV203", "RV205", "RV301"):
        assert {finding["outcome"] for finding in outcomes(outcome, check)} == {"skip"}, check


def test_data_folder_and_key_file_readable_by_others_fail(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "keys").mkdir(parents=True)
    (data / "keys" / "key-1.jwk.json").write_text("{}")
    (data / "keys" / "key-1.jwk.json").chmod(0o644)
    (data / "pseudonym.key").write_bytes(os.urandom(32))
    (data / "pseudonym.key").chmod(0o600)
    (data / "keys").chmod(0o700)
    data.chmod(0o755)
    outcome = review(tmp_path, CONTACTS_APP, "--format", "json", "--skip-dependencies", "--data-dir", data, env=LAUNCH)
    assert outcome.returncode == 1
    assert {(finding["location"], finding["message"], finding["severity"]) for finding in failed(outcome, "RV203")} == {
        (str(data), "the data folder is 0755: other accounts on this machine can enter it", "high"),
        (str(data / "keys" / "key-1.jwk.json"), "the file key-1.jwk.json is 0644: other accounts can read it", "high"),
    }


def test_key_file_readable_by_others_inside_a_private_folder_is_medium(tmp_path: Path) -> None:
    (tmp_path / "audit-checkpoint.key").write_text("key")
    (tmp_path / "audit-checkpoint.key").chmod(0o640)
    (tmp_path / "notes.txt").write_text("not ringfence's")
    (tmp_path / "notes.txt").chmod(0o644)
    tmp_path.chmod(0o700)
    [finding] = private_data_findings(tmp_path)
    assert (finding.outcome, finding.severity, finding.location) == (
        "fail", "medium", str(tmp_path / "audit-checkpoint.key"))


def test_unsafe_option_in_the_environment_fails(tmp_path: Path) -> None:
    outcome = review(tmp_path, CONTACTS_APP, "--format", "json", "--skip-dependencies",
                     env={**LAUNCH, "RINGFENCE_ALLOW_LOOPBACK_CLIENT_METADATA": "true"})
    assert outcome.returncode == 1
    [unsafe] = failed(outcome, "RV204")
    assert unsafe["severity"] == "high" and unsafe["message"].startswith("allow_loopback_client_metadata")


def test_guessable_metrics_token_fails_and_is_never_shown(tmp_path: Path) -> None:
    token = "ab" * 12
    outcome = review(tmp_path, CONTACTS_APP, "--format", "json", "--skip-dependencies",
                     env={**LAUNCH, "RINGFENCE_METRICS_TOKEN": token})
    [weak] = failed(outcome, "RV205")
    assert weak["severity"] == "medium" and weak["message"].startswith("RINGFENCE_METRICS_TOKEN has few distinct")
    assert token not in outcome.stdout + outcome.stderr


def test_secrets_in_the_environment_are_named_and_their_values_never_shown(tmp_path: Path) -> None:
    environment = {
        "OPENAI_API_KEY": "sk-live-1", "STRIPE_SECRET": "rk-live-2", "DB_PASSWORD": "hunter2",
        "CACHE_URL": "redis://user:s3cret@cache:6379/0",
        # not secrets: a file's path, an id, a fingerprint, the working folder, ringfence's own channel
        "GOOGLE_APPLICATION_CREDENTIALS": "/run/secrets/gcp.json", "AWS_ACCESS_KEY_ID": "AKIA…", "GPG_KEY": "A035C8C1",
        "PWD": "/srv", "TOKEN_URL": "https://idp.example.com/token", "RINGFENCE_METRICS_TOKEN": "x" * 32,
        "EMPTY_TOKEN": "",
    }
    found = environment_secret_findings(environment)
    assert [(finding.outcome, finding.message) for finding in found] == [
        ("fail", "CACHE_URL holds a URL with a password (its value is not shown)"),
        ("fail", "DB_PASSWORD holds a secret (its value is not shown)"),
        ("fail", "OPENAI_API_KEY holds a secret (its value is not shown)"),
        ("fail", "STRIPE_SECRET holds a secret (its value is not shown)"),
    ]
    assert {finding.severity for finding in found} == {"low"}
    shown = json.dumps([finding.to_dict() for finding in found])
    assert not any(value in shown for value in ("sk-live-1", "rk-live-2", "hunter2", "s3cret"))


# --- RV301: the audit log -------------------------------------------------------------------------------

def test_tampered_audit_log_fails_naming_the_first_bad_record(tmp_path: Path) -> None:
    intact, tampered = tmp_path / "intact", tmp_path / "tampered"
    with_audit_log(intact, 6)
    with_audit_log(tampered, 6, tamper="DELETE FROM ringfence_audit WHERE seq = 3")
    args = ["--format", "json", "--skip-dependencies"]
    runs = run_ringfence_many({
        "intact": (["review", CONTACTS_APP, *args, "--data-dir", str(intact)], LAUNCH),
        "tampered": (["review", CONTACTS_APP, *args, "--data-dir", str(tampered)], LAUNCH),
    }, tmp_path)
    assert [finding["outcome"] for finding in outcomes(runs["intact"], "RV301")] == ["pass"]
    assert outcomes(runs["intact"], "RV301")[0]["message"].startswith("audit log intact: records #1 to #6")
    assert runs["tampered"].returncode == 1
    [damaged] = failed(runs["tampered"], "RV301")
    assert damaged["severity"] == "high"
    assert damaged["message"] == ("audit log damaged at record #3 (missing): the chain jumps from #2 to #4, "
                                  "so records were deleted")


# --- RV401: dependencies --------------------------------------------------------------------------------

def test_recorded_vulnerable_answer_fails_once_per_package_with_ids_and_fixes() -> None:
    found = dependency_findings(read_pip_audit_report(VULNERABLE))
    failures = [finding for finding in found if finding.outcome == "fail"]
    assert [(finding.location, finding.severity) for finding in failures] == [
        ("jinja2==3.1.2", "high"), ("requests==2.31.0", "high")]
    assert failures[0].message == (
        "jinja2 3.1.2 has 2 known vulnerabilities: GHSA-h5c8-rqwp-cp95 (CVE-2024-22195): fixed in 3.1.3; "
        "GHSA-h75v-3vvj-5mfj (CVE-2024-34064): fixed in 3.1.4")
    # The package the service did not know is "not checked"; the editable install is not counted.
    [unchecked] = [finding for finding in found if finding.outcome == "skip"]
    assert unchecked.message.startswith("the vulnerability service could not check 1 of the 4 installed packages "
                                        "(internal-helpers)")


def test_recorded_clean_answer_passes() -> None:
    found = dependency_findings(read_pip_audit_report(CLEAN_ANSWER))
    assert [(finding.outcome, finding.message) for finding in found] == [
        ("pass", "no known vulnerability in the 3 packages pip-audit checked")]


def test_answer_from_a_service_that_knows_no_package_is_not_checked_never_passed() -> None:
    audit = parse_pip_audit(UNKNOWN_TO_SERVICE.read_text())
    assert audit.audited == 0 and len(audit.unaudited) > 50
    found = dependency_findings(lambda: audit)
    assert [finding.outcome for finding in found] == ["skip"]
    assert found[0].message.startswith("the vulnerability service could not check any of the ")


def test_unreachable_vulnerability_service_is_not_checked_with_the_reason(tmp_path: Path) -> None:
    """The real pip-audit, behind a proxy that refuses every connection, with an empty cache."""
    refused = "http://127.0.0.1:9"
    env = {name: value for name, value in os.environ.items() if name.lower() not in ("no_proxy", "all_proxy")}
    env.update(HTTPS_PROXY=refused, https_proxy=refused, HTTP_PROXY=refused, http_proxy=refused)
    started = time.monotonic()
    found = dependency_findings(lambda: run_pip_audit(cache_dir=tmp_path / "cache", env=env, seconds=60))
    assert time.monotonic() - started < 30
    assert [(finding.outcome, finding.message) for finding in found] == [
        ("skip", "pip-audit could not reach the vulnerability service or failed: ProxyError reaching pypi.org")]


def test_unreadable_pip_audit_answer_is_not_checked(tmp_path: Path) -> None:
    (tmp_path / "answer.json").write_text("Traceback (most recent call last):")
    found = dependency_findings(read_pip_audit_report(tmp_path / "answer.json"))
    assert [(finding.outcome, finding.message) for finding in found] == [("skip", "pip-audit's answer is not JSON")]
    try:
        parse_pip_audit('{"dependencies": "none"}')
    except DependenciesNotChecked as exc:
        assert str(exc) == "pip-audit's answer has no list of dependencies"
    else:
        raise AssertionError("an answer without dependencies was read")


# --- output and exit codes ------------------------------------------------------------------------------

def test_sarif_output_is_sarif_2_1_0_with_every_rule_and_the_failures(tmp_path: Path) -> None:
    outcome = review(tmp_path, CONTACTS_APP, "--format", "sarif", "--pip-audit-report", VULNERABLE, env=LAUNCH)
    assert outcome.returncode == 1
    sarif = json.loads(outcome.stdout)
    assert sarif["version"] == "2.1.0"
    [run] = sarif["runs"]
    assert run["tool"]["driver"]["name"] == "ringfence review"
    assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == [check.id for check in PREFLIGHT_CHECKS]
    assert {(result["ruleId"], result["level"]) for result in run["results"]} == {("RV401", "error")}


def test_fail_on_decides_the_exit_code(tmp_path: Path) -> None:
    low_only = {**LAUNCH, "OPENAI_API_KEY": "sk-live-1"}  # RV206, low
    base = ["review", CONTACTS_APP, "--skip-dependencies", "--data-dir", str(tmp_path / "data")]
    runs = run_ringfence_many({
        "default": (base, low_only), "high": ([*base, "--fail-on", "high"], low_only),
        "low": ([*base, "--fail-on", "low"], low_only),
    }, tmp_path)
    assert (runs["default"].returncode, runs["high"].returncode, runs["low"].returncode) == (0, 0, 1)
    assert "OPENAI_API_KEY holds a secret" in runs["low"].stdout and "sk-live-1" not in runs["low"].stdout


def test_an_app_that_cannot_be_reviewed_exits_2_with_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    runs = run_ringfence_many({
        "broken": (["review", str(broken)], {}),
        "missing": (["review", str(tmp_path / "missing.py")], {}),
        "no_app_here": (["review"], {}),  # the repository's root has no app.py
        "both_sources": (["review", CONTACTS_APP, "--skip-dependencies", "--pip-audit-report", str(VULNERABLE)], {}),
    }, tmp_path)
    assert {name: run.returncode for name, run in runs.items()} == {
        "broken": 2, "missing": 2, "no_app_here": 2, "both_sources": 2}
    assert runs["broken"].stderr.strip() == f"ringfence: error: cannot load {broken}: RuntimeError: boom"
    assert runs["no_app_here"].stderr.strip() == (
        "ringfence: error: no APP given and no app.py in this folder; give the app: path/to/app.py[:attr] or "
        "package.module[:attr]")
    assert runs["both_sources"].stderr.strip() == (
        "ringfence: error: give --skip-dependencies or --pip-audit-report, not both")
    assert all("Traceback" not in run.stderr and run.stdout == "" for run in runs.values())
