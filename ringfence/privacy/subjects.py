"""Everything held about one person, deleted or exported in one operation.

A person is named by the token subject (the ``sub`` their access tokens carry, which tools see as
``current_principal().subject``). Deletion runs in an order that is safe to repeat after a failure
part-way; each step is idempotent:

1. the embedded authorization server's account, codes, grants, refresh tokens, consents and
   sign-in sessions: one transaction, so access ends at once (the server also refuses the account's
   still-unexpired access tokens from then on, their grants being gone);
2. pending confirmations owned by the subject;
3. the app's records, through each ``App.personal_data`` declaration's ``delete`` hook;
4. the subject's audit payloads (erased; the chain still verifies);
5. a ``user.deleted`` audit record holding only the counts, written once everything succeeded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ringfence.audit.log import AuditLog
from ringfence.audit.records import EventKind
from ringfence.personal_data import DeletionIncomplete, PersonalData, UnknownSubject, export_time
from ringfence.privacy.holdings import StoppedAt, all_holdings, has_data
from ringfence.store.database import Database

logger = logging.getLogger("ringfence.privacy")

MAX_SUBJECT_LENGTH = 255  # the audit log's principal column


class SubjectError(ValueError):
    """The request names no valid subject (empty, too long, control characters)."""


def check_subject(subject: str) -> str:
    if not subject or len(subject) > MAX_SUBJECT_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in subject):
        raise SubjectError("a subject is 1-255 printable characters (the `sub` of the user's access tokens)")
    return subject


class SubjectData:
    """Deletes or exports one subject's data across every holder (:mod:`ringfence.privacy.holdings`)."""

    def __init__(self, database: Database, data_dir: Path,
                 personal_data: Mapping[str, PersonalData] | None = None) -> None:
        self.audit = AuditLog(database, data_dir)
        self.holdings = all_holdings(database, data_dir, personal_data)

    # Deletion ---------------------------------------------------------------------------------

    async def delete(self, subject: str, *, channel: str = "cli") -> dict[str, int]:
        """Remove everything held about ``subject``; the counts per kind. Raises :class:`UnknownSubject`."""
        check_subject(subject)
        if not await self._holds_anything(subject):
            raise UnknownSubject(f"no data is held about subject {subject!r}; nothing was changed")
        counts: dict[str, int] = {}
        first = self.holdings[0][0]
        for step, holder in self.holdings:
            try:
                counts |= await holder.delete(subject)
            except Exception as exc:
                if step == first:
                    raise  # the account is deleted in one transaction: nothing was changed
                if isinstance(exc, StoppedAt):
                    step, counts = exc.step, counts | exc.counts
                # The account may be gone already: record what is left to do, under the subject, so the
                # operator can finish it (``ringfence user delete TARGET SUBJECT``).
                logger.exception("the deletion of a subject stopped at %s", step)
                try:
                    await self.audit.append(EventKind.USER_DELETED, principal=subject, outcome="incomplete",
                                            payload={"channel": channel, "counts": counts, "stopped_at": step})
                except Exception:
                    logger.exception("the incomplete deletion could not be recorded either")
                raise DeletionIncomplete(subject, step) from exc
        await self.audit.append(EventKind.USER_DELETED, principal=subject, outcome="ok",
                                payload={"channel": channel, "counts": counts})
        logger.info("deleted the data of one subject (%s): %s", channel,
                    ", ".join(f"{count} {kind}" for kind, count in counts.items()))
        return counts

    async def _holds_anything(self, subject: str) -> bool:
        for _, holder in self.holdings:
            if await holder.holds(subject):
                return True
        return False

    # Export -----------------------------------------------------------------------------------

    async def export(self, subject: str) -> dict[str, Any]:
        """Everything held about ``subject`` as JSON-able data, with no secret (no hashes, no tokens)."""
        check_subject(subject)
        sections: dict[str, Any] = {}
        for _, holder in self.holdings:
            sections |= await holder.export(subject)
        app_data = sections.get("app_data", {})
        held = [value for key, value in sections.items() if key != "app_data"] + list(app_data.values())
        if not any(has_data(value) for value in held):
            raise UnknownSubject(f"no data is held about subject {subject!r}")
        return {"subject": subject, "exported_at": export_time(int(datetime.now(UTC).timestamp())), **sections}
