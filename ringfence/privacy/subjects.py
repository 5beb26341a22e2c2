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

from pydantic_core import to_jsonable_python
from sqlalchemy import delete, func, select

from ringfence.audit.log import AuditLog
from ringfence.audit.models import AuditRecord
from ringfence.audit.records import EventKind
from ringfence.audit.verification import has_audit_tables
from ringfence.authserver.models import AuthorizationCode, BrowserSession, Consent, Grant, RefreshToken, User
from ringfence.guards.confirmation import PendingConfirmation
from ringfence.privacy.declaration import PersonalData
from ringfence.store.database import Database

logger = logging.getLogger("ringfence.privacy")

MAX_SUBJECT_LENGTH = 255  # the audit log's principal column


class UnknownSubject(LookupError):
    """Nothing is held about the subject; nothing was changed."""


class DeletionIncomplete(RuntimeError):
    """A deletion stopped part-way; what was deleted stays deleted, and running it again finishes it."""

    def __init__(self, subject: str, step: str) -> None:
        super().__init__(f"the deletion of subject {subject!r} stopped at {step}; what was deleted stays deleted: "
                         f"run `ringfence user delete TARGET {subject}` again to finish")
        self.subject = subject
        self.step = step


class SubjectError(ValueError):
    """The request names no valid subject (empty, too long, control characters)."""


def check_subject(subject: str) -> str:
    if not subject or len(subject) > MAX_SUBJECT_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in subject):
        raise SubjectError("a subject is 1-255 printable characters (the `sub` of the user's access tokens)")
    return subject


def _time(epoch: int | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _has_data(value: Any) -> bool:
    return value not in (None, [], {}, (), "", 0)


class SubjectData:
    """Deletes or exports one subject's data across ringfence's tables, the audit log and the app."""

    def __init__(self, database: Database, data_dir: Path,
                 personal_data: Mapping[str, PersonalData] | None = None) -> None:
        self.database = database
        self.audit = AuditLog(database, data_dir)
        self.personal_data = dict(personal_data or {})

    async def subject_of_username(self, username: str) -> str:
        """The token subject of a local account (the embedded authorization server's users)."""
        async with self.database.session() as session:
            subject = await session.scalar(select(User.subject).where(User.username == username))
        if subject is None:
            raise UnknownSubject(f"there is no local user {username!r}; nothing was changed")
        return subject

    # Deletion ---------------------------------------------------------------------------------

    async def delete(self, subject: str, *, channel: str = "cli") -> dict[str, int]:
        """Remove everything held about ``subject``; the counts per kind. Raises :class:`UnknownSubject`."""
        check_subject(subject)
        if not await self._holds_anything(subject):
            raise UnknownSubject(f"no data is held about subject {subject!r}; nothing was changed")
        counts = await self._delete_account(subject)
        step = "confirmations"
        try:
            async with self.database.session() as session:
                result = await session.execute(delete(PendingConfirmation).where(self._owned_by(subject)))
                counts["confirmations"] = int(result.rowcount or 0)
            for spec in self.personal_data.values():
                step = f"app:{spec.name}"
                counts[step] = int(await spec.delete(subject) or 0)
            step = "audit_payloads"
            counts["audit_payloads"] = await self.audit.erase_payloads(principal=subject) \
                if await has_audit_tables(self.database) else 0
        except Exception as exc:
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

    async def _delete_account(self, subject: str) -> dict[str, int]:
        """The account and everything hanging off it, in one transaction."""
        counts = {"account": 0, "authorization_codes": 0, "grants": 0, "refresh_tokens": 0, "consents": 0,
                  "browser_sessions": 0}
        async with self.database.session() as session:
            user_id = await session.scalar(select(User.id).where(User.subject == subject))
            if user_id is None:
                return counts
            # The grants would also go with the account (foreign key cascade); deleted here to be counted.
            for kind, table in (("authorization_codes", AuthorizationCode), ("grants", Grant),
                                ("refresh_tokens", RefreshToken), ("consents", Consent),
                                ("browser_sessions", BrowserSession)):
                result = await session.execute(delete(table).where(table.user_id == user_id))  # type: ignore[attr-defined]
                counts[kind] = int(result.rowcount or 0)
            result = await session.execute(delete(User).where(User.id == user_id))
            counts["account"] = int(result.rowcount or 0)
        return counts

    @staticmethod
    def _owned_by(subject: str):  # type: ignore[no-untyped-def]
        """Confirmations whose owner (``"<issuer>|<subject>"``, guards/confirmation.py) is ``subject``'s.

        The issuer is a URL, which has no unescaped ``|`` (RFC 3986): so the owner must end with
        ``|subject`` and have no other ``|`` before that. (A subject such as ``auth0|ada`` must not
        match the confirmations of ``ada``.)
        """
        suffix = "|" + subject
        return PendingConfirmation.owner.endswith(suffix, autoescape=True) & ~func.substr(
            PendingConfirmation.owner, 1, func.length(PendingConfirmation.owner) - len(suffix)
        ).contains("|", autoescape=True)

    async def _holds_anything(self, subject: str) -> bool:
        async with self.database.session() as session:
            if await session.scalar(select(User.id).where(User.subject == subject)) is not None:
                return True
            if await session.scalar(select(PendingConfirmation.page_id).where(self._owned_by(subject)).limit(1)):
                return True
        if await has_audit_tables(self.database):
            async with self.database.session() as session:
                payload = select(AuditRecord.seq).where(AuditRecord.principal == subject,
                                                        AuditRecord.payload.is_not(None)).limit(1)
                if await session.scalar(payload) is not None:
                    return True
        for spec in self.personal_data.values():
            if _has_data(await spec.export(subject)):
                return True
        return False

    # Export -----------------------------------------------------------------------------------

    async def export(self, subject: str) -> dict[str, Any]:
        """Everything held about ``subject`` as JSON-able data, with no secret (no hashes, no tokens)."""
        check_subject(subject)
        document: dict[str, Any] = {"subject": subject, "exported_at": _time(int(datetime.now(UTC).timestamp()))}
        async with self.database.session() as session:
            user = await session.scalar(select(User).where(User.subject == subject))
            document["account"] = None if user is None else {
                "username": user.username, "subject": user.subject, "created_at": _time(user.created_at)}
            consents, grants, refresh_tokens = [], [], []
            if user is not None:
                for consent in await session.scalars(select(Consent).where(Consent.user_id == user.id)
                                                     .order_by(Consent.client_id)):
                    consents.append({"client_id": consent.client_id, "client_name": consent.client_name,
                                     "scopes": consent.scope.split(), "updated_at": _time(consent.updated_at)})
                # A grant is one sign-in of one client; its id (the tokens' ``sid``) is not shown.
                for grant in await session.scalars(select(Grant).where(Grant.user_id == user.id)
                                                   .order_by(Grant.created_at, Grant.id)):
                    grants.append({"client_id": grant.client_id, "created_at": _time(grant.created_at),
                                   "revoked_at": _time(grant.revoked_at)})
                tokens = select(RefreshToken).where(RefreshToken.user_id == user.id).order_by(
                    RefreshToken.created_at, RefreshToken.family_id)
                for token in await session.scalars(tokens):
                    refresh_tokens.append({
                        "client_id": token.client_id, "scopes": token.scope.split(), "resource": token.resource,
                        "issued_at": _time(token.created_at), "expires_at": _time(token.expires_at),
                        "used_at": _time(token.used_at), "revoked_at": _time(token.revoked_at)})
            document["consents"], document["grants"], document["refresh_tokens"] = consents, grants, refresh_tokens
            pending = select(PendingConfirmation).where(self._owned_by(subject)).order_by(
                PendingConfirmation.expires_at, PendingConfirmation.page_id)
            document["confirmations"] = [
                {"tool": row.tool, "preview": row.preview, "status": row.status, "expires_at": _time(row.expires_at)}
                for row in await session.scalars(pending)
            ]
        document["audit_records"] = []
        if await has_audit_tables(self.database):
            async for record in self.audit.query(principal=subject):
                document["audit_records"].append({
                    "seq": record.seq, "ts": record.ts, "kind": record.kind, "tool": record.tool,
                    "outcome": record.outcome, "latency_ms": record.latency_ms, "details": record.payload,
                    "erased_at": record.erased_at})
        app_data = {name: to_jsonable_python(await spec.export(subject))
                    for name, spec in self.personal_data.items()}
        document["app_data"] = app_data
        held = (user is not None or document["confirmations"] or document["audit_records"]
                or any(_has_data(value) for value in app_data.values()))
        if not held:
            raise UnknownSubject(f"no data is held about subject {subject!r}")
        return document
