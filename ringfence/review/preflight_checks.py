"""Every check ``ringfence review`` runs, with the rule it comes from and the fix. Ids are stable:
RV1xx the app's declaration (lint, tools.lock, disclosure), RV2xx the configuration it would be
served with, RV3xx the data already written, RV4xx the installed packages."""

from __future__ import annotations

from ringfence.review.report import Check

MCP_AUTH = "MCP authorization (2025-11-25, 2026-07-28)"
APPS_SDK = "Apps SDK security & privacy guide"

# --- the app ----------------------------------------------------------------------------------------
LINT = Check(
    "RV101", "Tools and widgets pass the lint", "high",
    f"ringfence lint RF001-RF009, RF101-RF108, RF201-RF204; {APPS_SDK} (tool descriptions, widget CSP); "
    "MCP security best practices (tool poisoning)",
    "Run `ringfence lint --submission APP` and fix what it reports: errors are high, warnings low.")
LOCK = Check(
    "RV102", "tools.lock matches the app's tools", "high",
    "ringfence lock: every tool contract pinned and reviewed (MCP security best practices: a tool changed "
    "after approval)",
    "Review what changed, then run `ringfence lock APP` and commit tools.lock.")
DISCLOSURE = Check(
    "RV103", "The privacy disclosure matches the app and its retention settings", "medium",
    f"{APPS_SDK} (app submission needs a privacy policy); GDPR Art. 13(2)(a) (how long data is kept)",
    "Run `ringfence privacy APP --output PRIVACY.md` with the production settings, commit it and publish it "
    "with your privacy policy.")

# --- configuration ----------------------------------------------------------------------------------
CONFIGURATION = Check(
    "RV201", "ringfence accepts the configuration", "high",
    "ringfence serve refuses an unsafe or ambiguous configuration at start-up (README: Configuration)",
    "Fix the setting the message names (RINGFENCE_* variables, or the options given to the review).")
PUBLIC_URL = Check(
    "RV202", "The public URL is https", "high",
    f"OAuth 2.1 §1.5; {MCP_AUTH} §Communication security: https everywhere but loopback",
    "Set RINGFENCE_PUBLIC_URL to the https origin clients use, e.g. https://mcp.example.com, and terminate TLS "
    "in front of ringfence.")
PRIVATE_DATA = Check(
    "RV203", "The data folder and its keys are private to their owner", "high",
    "ringfence data folder: folders 0700, files 0600 (it holds the signing keys, the pseudonym key, the audit "
    "checkpoint key and the database); CWE-732",
    "chmod 700 the data folder and chmod 600 the files in it (or start `ringfence serve` once as the owner: it "
    "tightens them); keep backups as private.")
UNSAFE_OPTIONS = Check(
    "RV204", "No unsafe option is enabled", "high",
    "ringfence: an option that gives up a protection is named for it (unsafe_*, allow_loopback_*) and "
    "announced at start-up",
    "Turn the option off for production; keep one only if the app cannot work without it, and say why in "
    "your submission.")
MONITORING = Check(
    "RV205", "/metrics and alerts are protected", "medium",
    "ringfence operations (README: Operations): /metrics for loopback peers or a random token; alert webhooks "
    "signed with a random secret",
    "Set RINGFENCE_METRICS_TOKEN and RINGFENCE_ALERT_WEBHOOK_SECRET to random values, e.g. "
    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`.")
ENVIRONMENT_SECRETS = Check(
    "RV206", "No other secrets sit in the environment", "low",
    "CWE-526 (sensitive information in environment variables: inherited by child processes, shown in "
    "/proc/PID/environ, crash reports and CI logs); ringfence's own RINGFENCE_*_SECRET/_TOKEN are exempt",
    "Give secrets to the app as files (a secret mount read at start-up, *_FILE variables) and database "
    "passwords through ~/.pgpass or PGPASSFILE, not in URLs or variables.")

# --- data -------------------------------------------------------------------------------------------
AUDIT_LOG = Check(
    "RV301", "The audit log is intact", "high",
    "ringfence audit verify: the hash chain and the signed checkpoints (README: Audit log)",
    "Run `ringfence audit verify` and investigate the first damaged record; restore the database from a backup "
    "taken before it.")

# --- dependencies -----------------------------------------------------------------------------------
DEPENDENCIES = Check(
    "RV401", "No installed package has a known vulnerability", "high",
    "OWASP Top 10 A06:2021 (vulnerable and outdated components); pip-audit against the PyPI advisory data",
    "Upgrade each package to a fixed version (`pip install 'PACKAGE>=FIXED'`) and pin it; then review again.")

PREFLIGHT_CHECKS: tuple[Check, ...] = tuple(value for value in globals().values() if isinstance(value, Check))
