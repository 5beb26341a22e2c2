"""What the confirmation guard keeps about people, registered for ``ringfence.privacy``: pending
confirmations of destructive calls (tool, arguments hash, the preview sentence), owned by
:func:`ringfence.principal.identity_key`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select

from ringfence.guards.confirmation import CONFIRM_SECONDS, PendingConfirmation
from ringfence.personal_data import PurgeStep, Retention, RetentionRule, export_time, plural
from ringfence.store.database import Database
from ringfence.store.rows import delete_rows

HOUR = 3600


def owned_by(subject: str):  # type: ignore[no-untyped-def]
    """Confirmations whose owner (``identity_key(issuer, subject)``, ``"<issuer>|<subject>"``) is ``subject``'s.

    The issuer is a URL, which has no unescaped ``|`` (RFC 3986): so the owner must end with
    ``|subject`` and have no other ``|`` before that. (A subject such as ``auth0|ada`` must not
    match the confirmations of ``ada``.)
    """
    suffix = "|" + subject
    return PendingConfirmation.owner.endswith(suffix, autoescape=True) & ~func.substr(
        PendingConfirmation.owner, 1, func.length(PendingConfirmation.owner) - len(suffix)
    ).contains("|", autoescape=True)


def retention(kept: Retention) -> list[RetentionRule]:
    """Pending confirmations, and for how long."""
    return [RetentionRule(
        "confirmations", "pending confirmations of irreversible tool calls (tool, arguments hash, the "
        f"preview sentence; valid {CONFIRM_SECONDS // 60} minutes)",
        f"{plural(kept.confirmation_hours, 'hour')} after expiry",
        "RINGFENCE_RETENTION_CONFIRMATION_HOURS")]


class ConfirmationHoldings:
    """Pending confirmations (:class:`ringfence.personal_data.Holdings`)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def purge_steps(self, kept: Retention, moment: float, *, dry_run: bool) -> list[PurgeStep]:
        expired = PendingConfirmation.expires_at < moment - kept.confirmation_hours * HOUR
        return [("confirmations", lambda: delete_rows(self.database, PendingConfirmation, [expired], dry_run=dry_run))]

    async def holds(self, subject: str) -> bool:
        async with self.database.session() as session:
            return bool(await session.scalar(select(PendingConfirmation.page_id).where(owned_by(subject)).limit(1)))

    async def export(self, subject: str) -> dict[str, Any]:
        pending = select(PendingConfirmation).where(owned_by(subject)).order_by(
            PendingConfirmation.expires_at, PendingConfirmation.page_id)
        async with self.database.session() as session:
            return {"confirmations": [
                {"tool": row.tool, "preview": row.preview, "status": row.status,
                 "expires_at": export_time(row.expires_at)}
                for row in await session.scalars(pending)
            ]}

    async def delete(self, subject: str) -> dict[str, int]:
        async with self.database.session() as session:
            result = await session.execute(delete(PendingConfirmation).where(owned_by(subject)))
        return {"confirmations": int(result.rowcount or 0)}
