"""A deletion that stops part-way is recorded under the subject and finished by running it again.

The account goes first (access ends at once); if an app hook then fails, the person can no longer
sign in to retry, so the audit log must say what is left, and a second run must finish it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ringfence.audit.log import AuditLog
from ringfence.authserver.users import UserStore
from ringfence.personal_data import declare_personal_data
from ringfence.privacy.subjects import DeletionIncomplete, SubjectData
from ringfence.store.database import Database


def test_a_failing_app_hook_leaves_an_incomplete_record_and_a_second_run_finishes(tmp_path: Path) -> None:
    held = {"notes": ["a note"]}
    failures = [RuntimeError("the app's store is down")]

    async def export(subject: str) -> list[str]:
        return held["notes"]

    async def delete(subject: str) -> int:
        if failures:
            raise failures.pop()
        count, held["notes"] = len(held["notes"]), []
        return count

    notes = declare_personal_data("notes", description="Notes you write.", data_classes=["personal"],
                                  export=export, delete=delete)

    async def scenario() -> tuple[str, list[tuple[str, str]], dict[str, int]]:
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'ringfence.db'}")
        await database.start()
        try:
            user = await UserStore(database).add("ada", "correct horse battery staple")
            data = SubjectData(database, tmp_path, {"notes": notes})
            with pytest.raises(DeletionIncomplete) as stopped:
                await data.delete(user.subject)
            assert user.subject in str(stopped.value) and "app:notes" in str(stopped.value)
            counts = await data.delete(user.subject)  # the account is gone; the rest is finished now
            log = AuditLog(database, tmp_path)
            trail = [(r.kind, r.outcome) async for r in log.query(kind="user.deleted")]
            assert (await log.verify()).ok
            return user.subject, trail, counts
        finally:
            await database.close()

    _, trail, counts = asyncio.run(scenario())
    assert trail == [("user.deleted", "incomplete"), ("user.deleted", "ok")]
    assert counts["app:notes"] == 1 and counts["account"] == 0
    assert held["notes"] == []


def test_deleting_a_subject_removes_its_confirmations_and_not_those_of_a_subject_ending_like_it(
    tmp_path: Path,
) -> None:
    """Owners are "<issuer>|<subject>": deleting "ada" must not touch "auth0|ada" (an IdP-style subject)."""
    import time

    from sqlalchemy import select

    from ringfence.guards.confirmation import PendingConfirmation

    async def scenario() -> list[str]:
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'ringfence.db'}")
        await database.start()
        try:
            async with database.session() as session:
                for index, owner in enumerate(("https://idp.example|ada", "https://idp.example|auth0|ada")):
                    session.add(PendingConfirmation(
                        handle_hash=f"h{index}", page_id=f"p{index}", tool="delete_contact", arguments_hash="x",
                        owner=owner, preview="delete a contact", status="pending",
                        expires_at=int(time.time()) + 300))
            await SubjectData(database, tmp_path).delete("ada")
            async with database.session() as session:
                return list(await session.scalars(select(PendingConfirmation.owner)))
        finally:
            await database.close()

    assert asyncio.run(scenario()) == ["https://idp.example|auth0|ada"]
