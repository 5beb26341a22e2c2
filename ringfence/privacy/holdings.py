"""Every holder of personal data, in the order deletion runs: the one list ``ringfence.privacy`` iterates.

Each package registers its own tables (``ringfence/<package>/holdings.py``); the app's declared
records are adapted to the same interface. Deletion runs in this order, each step safe to repeat
after a failure part-way: the account first (access ends at once), then pending confirmations, the
app's records, and the audit payloads last, just before the ``user.deleted`` record.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic_core import to_jsonable_python

from ringfence.audit import holdings as audit
from ringfence.audit.log import AuditLog
from ringfence.authserver import holdings as account
from ringfence.config import Settings
from ringfence.guards import holdings as confirmations
from ringfence.personal_data import Holdings, PersonalData, PurgeStep, Retention, RetentionRule
from ringfence.store.database import Database


def has_data(value: Any) -> bool:
    return value not in (None, [], {}, (), "", 0)


class AppRecords:
    """The app's ``App.personal_data`` declarations, through their hooks (``app:<name>`` in counts)."""

    def __init__(self, personal_data: Mapping[str, PersonalData] | None) -> None:
        self.declarations = dict(personal_data or {})

    def purge_steps(self, kept: Retention, moment: float, *, dry_run: bool) -> list[PurgeStep]:
        async def purge(spec: PersonalData) -> int | None:
            if dry_run:
                return None  # the app's hook deletes; it cannot be asked to count
            assert spec.purge is not None and spec.keep_days is not None
            return int(await spec.purge(datetime.fromtimestamp(moment, UTC) - timedelta(days=spec.keep_days)) or 0)

        return [(f"app:{spec.name}", lambda spec=spec: purge(spec)) for spec in self.declarations.values()
                if spec.purge is not None and spec.keep_days is not None]

    async def holds(self, subject: str) -> bool:
        for spec in self.declarations.values():
            if has_data(await spec.export(subject)):
                return True
        return False

    async def export(self, subject: str) -> dict[str, Any]:
        return {"app_data": {name: to_jsonable_python(await spec.export(subject))
                             for name, spec in self.declarations.items()}}

    async def delete(self, subject: str) -> dict[str, int]:
        # One hook at a time, so that a failure names the declaration it stopped at, with the counts so far.
        counts: dict[str, int] = {}
        for spec in self.declarations.values():
            try:
                counts[f"app:{spec.name}"] = int(await spec.delete(subject) or 0)
            except Exception as exc:
                raise StoppedAt(f"app:{spec.name}", counts) from exc
        return counts


class StoppedAt(Exception):
    """A holder's deletion stopped at ``step`` after removing ``counts``."""

    def __init__(self, step: str, counts: dict[str, int]) -> None:
        super().__init__(step)
        self.step = step
        self.counts = counts


def all_holdings(database: Database, data_dir: Path,
                 personal_data: Mapping[str, PersonalData] | None = None) -> list[tuple[str, Holdings]]:
    """Every holder, named for where a deletion stops, in deletion order."""
    return [
        ("account", account.AccountHoldings(database)),
        ("confirmations", confirmations.ConfirmationHoldings(database)),
        ("app", AppRecords(personal_data)),
        ("audit_payloads", audit.AuditHoldings(AuditLog(database, data_dir))),
    ]


def retention_of(settings: Settings) -> Retention:
    """The retention periods the settings give (the holders take these, not the whole settings)."""
    return Retention(
        authorization_code_hours=settings.retention_authorization_code_hours,
        refresh_token_days=settings.retention_refresh_token_days,
        confirmation_hours=settings.retention_confirmation_hours,
        idle_client_days=settings.retention_idle_client_days,
        audit_payload_days=settings.retention_audit_payload_days,
    )


def all_retention(kept: Retention) -> list[RetentionRule]:
    """What ringfence's own holders keep, and for how long (the app's declarations are added by the caller)."""
    return [*account.retention(kept), *confirmations.retention(kept), *audit.retention(kept)]
