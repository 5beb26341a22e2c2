"""What the audit log keeps about people, registered for ``ringfence.privacy``: the details
(payloads) of the records naming them. Erasing a payload keeps the record and its hash, so the
chain still verifies (:meth:`AuditLog.erase_payloads`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from ringfence.audit.log import AuditLog
from ringfence.audit.models import AuditRecord
from ringfence.audit.records import format_time
from ringfence.audit.verification import has_audit_tables
from ringfence.personal_data import PurgeStep, Retention, RetentionRule, plural


def retention(kept: Retention) -> list[RetentionRule]:
    """Audit payloads, and for how long."""
    return [RetentionRule(
        "audit_payloads", "details of audit records (redacted: tool arguments appear only as a hash, field "
        "names and size)",
        f"{plural(kept.audit_payload_days, 'day')}, then erased; the records themselves "
        "(time, kind, subject, tool, outcome, request id, a keyed hash of the host's conversation id) stay so "
        "the hash chain still verifies",
        "RINGFENCE_RETENTION_AUDIT_PAYLOAD_DAYS")]


class AuditHoldings:
    """Audit payloads (:class:`ringfence.personal_data.Holdings`); a database without an audit log holds none."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log

    def purge_steps(self, kept: Retention, moment: float, *, dry_run: bool) -> list[PurgeStep]:
        before = datetime.fromtimestamp(moment, UTC) - timedelta(days=kept.audit_payload_days)

        async def erase() -> int:
            if not await has_audit_tables(self.log.database):
                return 0
            if not dry_run:
                return await self.log.erase_payloads(before=before)
            async with self.log.database.session() as session:
                query = select(func.count()).select_from(AuditRecord).where(
                    AuditRecord.payload.is_not(None), AuditRecord.ts < format_time(before))
                return int(await session.scalar(query) or 0)

        return [("audit_payloads", erase)]

    async def holds(self, subject: str) -> bool:
        if not await has_audit_tables(self.log.database):
            return False
        async with self.log.database.session() as session:
            payload = select(AuditRecord.seq).where(AuditRecord.principal == subject,
                                                    AuditRecord.payload.is_not(None)).limit(1)
            return await session.scalar(payload) is not None

    async def export(self, subject: str) -> dict[str, Any]:
        records: list[dict[str, Any]] = []
        if await has_audit_tables(self.log.database):
            async for record in self.log.query(principal=subject):
                records.append({
                    "seq": record.seq, "ts": record.ts, "kind": record.kind, "tool": record.tool,
                    "outcome": record.outcome, "latency_ms": record.latency_ms, "details": record.payload,
                    "erased_at": record.erased_at})
        return {"audit_records": records}

    async def delete(self, subject: str) -> dict[str, int]:
        erased = await self.log.erase_payloads(principal=subject) if await has_audit_tables(self.log.database) else 0
        return {"audit_payloads": erased}
