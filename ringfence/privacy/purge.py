"""The purge: one pass deletes everything past its retention period, and a schedule repeats it.

Every step is a plain conditional ``DELETE`` (or the audit log's own payload erasure), so a pass is
idempotent and several instances may run it at once: whichever deletes a row first wins, the
others delete nothing. A step that fails is logged and tried again on the next pass; the other
steps still run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, or_, select
from sqlalchemy.sql import Select

from ringfence.audit.log import AuditLog
from ringfence.audit.models import AuditRecord
from ringfence.audit.records import format_time
from ringfence.audit.verification import has_audit_tables
from ringfence.authserver.models import (
    AuthorizationCode,
    BrowserSession,
    Consent,
    Grant,
    RefreshToken,
    RegisteredClient,
)
from ringfence.config import Settings
from ringfence.guards.confirmation import PendingConfirmation
from ringfence.privacy.declaration import PersonalData
from ringfence.privacy.retention import GRANT_KEPT_SECONDS
from ringfence.store.database import Database

logger = logging.getLogger("ringfence.privacy")

HOUR, DAY = 3600, 86400
FIRST_PASS_DELAY_SECONDS = 10.0  # soon after start, once the server is answering


@dataclass
class PurgeReport:
    """Rows (or payloads) removed per kind; ``None``: not counted (an app hook in a dry run)."""

    counts: dict[str, int | None] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)


class Purge:
    """One purge pass over ringfence's tables, the audit payloads and the app's declared records."""

    def __init__(self, database: Database, data_dir: Path, settings: Settings,
                 personal_data: Mapping[str, PersonalData] | None = None) -> None:
        self.database = database
        self.settings = settings
        self.audit = AuditLog(database, data_dir)
        self.personal_data = dict(personal_data or {})

    async def run(self, *, now: float | None = None, dry_run: bool = False) -> PurgeReport:
        """Delete (or, with ``dry_run``, count) what is past retention at ``now`` (default: the clock)."""
        moment = time.time() if now is None else now
        report = PurgeReport()
        steps: list[tuple[str, Callable[[], Awaitable[int | None]]]] = [
            ("authorization_codes", lambda: self._rows(self._expired_codes(moment), dry_run)),
            ("refresh_tokens", lambda: self._rows(self._dead_families(moment), dry_run)),
            ("grants", lambda: self._rows(self._spent_grants(moment), dry_run)),
            ("browser_sessions", lambda: self._rows(self._expired_sessions(moment), dry_run)),
            ("confirmations", lambda: self._rows(self._expired_confirmations(moment), dry_run)),
            ("idle_clients", lambda: self._rows(self._idle_clients(moment), dry_run)),
            ("audit_payloads", lambda: self._audit_payloads(moment, dry_run)),
        ]
        for spec in self.personal_data.values():
            if spec.purge is not None and spec.keep_days is not None:
                steps.append((f"app:{spec.name}", lambda spec=spec: self._app_records(spec, moment, dry_run)))
        for kind, step in steps:
            try:
                report.counts[kind] = await step()
            except Exception as exc:  # one kind failing must not stop the others; retried next pass
                logger.error("purge of %s failed (%s); it is retried on the next pass", kind, type(exc).__name__)
                logger.debug("purge of %s failed", kind, exc_info=True)
                report.failed.append(kind)
        return report

    # What is past retention: (table, condition) pairs, deleted or counted ------------------------

    def _expired_codes(self, moment: float) -> tuple[type, list]:
        grace = self.settings.retention_authorization_code_hours * HOUR
        return AuthorizationCode, [AuthorizationCode.expires_at < moment - grace]

    def _kept_families(self, moment: float) -> Select:
        # A family stays whole while any token of it could still be valid (or was revoked recently):
        # its used tokens are what lets a replayed one revoke the family (OAuth 2.1 §4.3.1).
        cutoff = moment - self.settings.retention_refresh_token_days * DAY
        return select(RefreshToken.family_id).where(or_(
            RefreshToken.revoked_at.is_(None) & (RefreshToken.expires_at >= cutoff),
            RefreshToken.revoked_at >= cutoff,
        ))

    def _dead_families(self, moment: float) -> tuple[type, list]:
        return RefreshToken, [RefreshToken.family_id.not_in(self._kept_families(moment))]

    def _spent_grants(self, moment: float) -> tuple[type, list]:
        # A grant goes with the last refresh token of its family that the purge keeps (the same
        # condition, so a dry run counts what the real pass deletes), and not before the access tokens
        # it issued, or revoked, have expired (a token whose grant is gone is refused all the same).
        cutoff = moment - GRANT_KEPT_SECONDS
        return Grant, [
            Grant.id.not_in(self._kept_families(moment)),
            Grant.created_at < cutoff,
            or_(Grant.revoked_at.is_(None), Grant.revoked_at < cutoff),
        ]

    def _expired_sessions(self, moment: float) -> tuple[type, list]:
        return BrowserSession, [BrowserSession.expires_at < moment]

    def _expired_confirmations(self, moment: float) -> tuple[type, list]:
        grace = self.settings.retention_confirmation_hours * HOUR
        return PendingConfirmation, [PendingConfirmation.expires_at < moment - grace]

    def _idle_clients(self, moment: float) -> tuple[type, list] | None:
        days = self.settings.retention_idle_client_days
        if days == 0:
            return None
        return RegisteredClient, [
            RegisteredClient.created_at < moment - days * DAY,
            RegisteredClient.client_id.not_in(select(Consent.client_id)),
            RegisteredClient.client_id.not_in(select(RefreshToken.client_id)),
            RegisteredClient.client_id.not_in(select(AuthorizationCode.client_id)),
        ]

    async def _rows(self, target: tuple[type, list] | None, dry_run: bool) -> int:
        if target is None:
            return 0
        table, conditions = target
        async with self.database.session() as session:
            if dry_run:
                query: Select = select(func.count()).select_from(table).where(*conditions)
                return int(await session.scalar(query) or 0)
            result = await session.execute(delete(table).where(*conditions))
            return int(result.rowcount or 0)

    async def _audit_payloads(self, moment: float, dry_run: bool) -> int:
        if not await has_audit_tables(self.database):
            return 0
        before = datetime.fromtimestamp(moment, UTC) - timedelta(days=self.settings.retention_audit_payload_days)
        if dry_run:
            async with self.database.session() as session:
                query = select(func.count()).select_from(AuditRecord).where(
                    AuditRecord.payload.is_not(None), AuditRecord.ts < format_time(before))
                return int(await session.scalar(query) or 0)
        return await self.audit.erase_payloads(before=before)

    async def _app_records(self, spec: PersonalData, moment: float, dry_run: bool) -> int | None:
        if dry_run:
            return None  # the app's hook deletes; it cannot be asked to count
        assert spec.purge is not None and spec.keep_days is not None
        older_than = datetime.fromtimestamp(moment, UTC) - timedelta(days=spec.keep_days)
        return int(await spec.purge(older_than) or 0)


class PurgeSchedule:
    """Runs a purge soon after start and then every ``interval`` seconds until cancelled; never raises."""

    def __init__(self, purge: Purge, interval: float, first_delay: float = FIRST_PASS_DELAY_SECONDS) -> None:
        self.purge = purge
        self.interval = interval
        self.first_delay = first_delay
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ringfence-purge")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _loop(self) -> None:
        await asyncio.sleep(self.first_delay)
        while True:
            try:
                report = await self.purge.run()
                removed = {kind: count for kind, count in report.counts.items() if count}
                if removed:
                    logger.info("purge removed %s", ", ".join(f"{count} {kind}" for kind, count in removed.items()))
            except Exception as exc:  # a bug in one pass must not end the schedule
                logger.error("purge pass failed (%s); retrying in %d s", type(exc).__name__, self.interval)
            await asyncio.sleep(self.interval)
