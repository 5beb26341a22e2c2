"""The retention table: every kind of data ringfence stores, how long it is kept, and why.

One list, read by the purge (which deletes past these periods), ``ringfence purge`` (which prints a
count per kind) and the privacy disclosure (which prints the table with the configured values).
"""

from __future__ import annotations

from collections.abc import Mapping

from ringfence.config import Settings
from ringfence.personal_data import PersonalData, RetentionRule, plural
from ringfence.privacy.holdings import all_retention, retention_of


def retention_table(settings: Settings, personal_data: Mapping[str, PersonalData] | None = None) -> list[RetentionRule]:
    """Every kind of stored data with its configured retention, in a fixed order: ringfence's holders,
    the server logs, then the app's declared records."""
    rules = all_retention(retention_of(settings))
    rules.append(RetentionRule("server_logs", "server log lines (request ids, keyed hashes, no raw arguments or "
                                              "tokens)", _log_retention(settings), "RINGFENCE_LOG_RETENTION_DAYS"))
    for spec in (personal_data or {}).values():
        rules.append(RetentionRule(f"app:{spec.name}", spec.description, spec.retention))
    return rules


def _log_retention(settings: Settings) -> str:
    return (f"{plural(settings.log_retention_days, 'day')} in daily-rotated files when --log-file is set; "
            "otherwise written to standard error and kept by whatever collects it")
