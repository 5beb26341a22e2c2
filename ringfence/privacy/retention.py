"""The retention table: every kind of data ringfence stores, how long it is kept, and why.

One list, read by the purge (which deletes past these periods), ``ringfence purge`` (which prints a
count per kind) and the privacy disclosure (which prints the table with the configured values).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ringfence.authserver.oauth import ACCESS_TOKEN_SECONDS
from ringfence.config import Settings
from ringfence.privacy.declaration import PersonalData

# Lifetimes fixed by the authorization server and the confirmation guard (not settings).
CODE_LIFETIME = "60 seconds"
REFRESH_LIFETIME = "30 days from its issue, rotated on every use"
SESSION_LIFETIME = "12 hours"
CONFIRMATION_LIFETIME = "5 minutes"

# A grant (one sign-in of one client, named by its access tokens' ``sid``) is kept while the purge keeps
# any refresh token of its family, and this long after it was made and after it was revoked: past the
# longest access-token lifetime, with a margin for clock leeway (at most 5 minutes) and the moment
# between a code's redemption and its refresh token's storage. A token whose grant is gone is refused.
GRANT_MARGIN_SECONDS = 3600
GRANT_KEPT_SECONDS = ACCESS_TOKEN_SECONDS + GRANT_MARGIN_SECONDS


@dataclass(frozen=True)
class RetentionRule:
    """One kind of stored data: ``kind`` names it in purge counts, ``kept`` says how long, with the setting."""

    kind: str
    what: str
    kept: str
    setting: str | None = None


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _duration(seconds: int) -> str:
    return _plural(seconds // 3600, "hour") if seconds % 3600 == 0 else _plural(seconds // 60, "minute")


def retention_table(settings: Settings, personal_data: Mapping[str, PersonalData] | None = None) -> list[RetentionRule]:
    """Every kind of stored data with its configured retention, in a fixed order."""
    rules = [
        RetentionRule(
            "authorization_codes", f"OAuth authorization codes (stored as hashes; valid {CODE_LIFETIME}, once)",
            f"{_plural(settings.retention_authorization_code_hours, 'hour')} after expiry, so a replayed "
            "code still revokes the tokens it issued", "RINGFENCE_RETENTION_AUTHORIZATION_CODE_HOURS"),
        RetentionRule(
            "refresh_tokens", f"refresh tokens and their grant metadata (hashes; each valid {REFRESH_LIFETIME})",
            f"until every token of the same sign-in has expired or been revoked, plus "
            f"{_plural(settings.retention_refresh_token_days, 'day')}: a reused old token still revokes the "
            "whole family while any of it could be valid", "RINGFENCE_RETENTION_REFRESH_TOKEN_DAYS"),
        RetentionRule(
            "grants", "grants: each sign-in of an app to an account (which app, when, whether revoked; its access "
            "and refresh tokens name it)",
            f"while any refresh token of the same sign-in is kept, and at least "
            f"{_duration(GRANT_KEPT_SECONDS)} after it was made or revoked: {_duration(ACCESS_TOKEN_SECONDS)}, "
            f"the lifetime of its access tokens, plus {_duration(GRANT_MARGIN_SECONDS)}"),
        RetentionRule("browser_sessions", f"sign-in sessions of the account pages (hashes; {SESSION_LIFETIME})",
                      "until they expire or the user signs out"),
        RetentionRule(
            "confirmations", "pending confirmations of destructive tool calls (tool, arguments hash, the "
            f"preview sentence; valid {CONFIRMATION_LIFETIME})",
            f"{_plural(settings.retention_confirmation_hours, 'hour')} after expiry",
            "RINGFENCE_RETENTION_CONFIRMATION_HOURS"),
        RetentionRule("consents", "which apps a user connected, with the scopes they approved",
                      "until the user revokes them on /account or deletes their account"),
        RetentionRule(
            "idle_clients", "OAuth clients registered through dynamic registration (name, redirect URIs)",
            "kept while they hold a consent, token or code; otherwise "
            + (f"deleted {_plural(settings.retention_idle_client_days, 'day')} after registration"
               if settings.retention_idle_client_days else "kept"),
            "RINGFENCE_RETENTION_IDLE_CLIENT_DAYS"),
        RetentionRule("accounts", "user accounts of the sign-in page (username, argon2id password hash)",
                      "until the account is deleted (by the user on /account, or `ringfence user delete`)"),
        RetentionRule(
            "audit_payloads", "details of audit records (redacted: tool arguments appear only as a hash, field "
            "names and size)",
            f"{_plural(settings.retention_audit_payload_days, 'day')}, then erased; the records themselves "
            "(time, kind, subject, tool, outcome) stay so the hash chain still verifies",
            "RINGFENCE_RETENTION_AUDIT_PAYLOAD_DAYS"),
        RetentionRule("server_logs", "server log lines (request ids, keyed hashes, no raw arguments or tokens)",
                      _log_retention(settings), "RINGFENCE_LOG_RETENTION_DAYS"),
    ]
    for spec in (personal_data or {}).values():
        rules.append(RetentionRule(f"app:{spec.name}", spec.description, spec.retention))
    return rules


def _log_retention(settings: Settings) -> str:
    # The log-file settings belong to the logging feature; read them only if this build has them.
    days = getattr(settings, "log_retention_days", None)
    if isinstance(days, int):
        return (f"{_plural(days, 'day')} in daily-rotated files when --log-file is set; otherwise written to "
                "standard error and kept by whatever collects it")
    return "written to standard error and kept by whatever collects it"
