"""Grants (one sign-in of one client, the ``sid`` of its tokens) under the purge, deletion and export.

On SQLite and PostgreSQL. The purge runs "at" a chosen moment ``T``; grants and refresh tokens are
inserted with timestamps around it. That a purged grant's access token is refused is checked in
tests/authserver/test_live_grants.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from ringfence.authserver.holdings import GRANT_KEPT_SECONDS
from ringfence.authserver.models import Grant, RefreshToken, User
from ringfence.authserver.oauth import ACCESS_TOKEN_SECONDS
from ringfence.config import Settings
from ringfence.privacy.purge import Purge
from ringfence.privacy.subjects import SubjectData
from ringfence.store.database import Database

pytestmark = pytest.mark.anyio

HOUR, DAY = 3600, 86400
T = int(time.time())


async def users(database: Database, *subjects: str) -> None:
    async with database.session() as session:
        session.add_all([User(id=number, subject=subject, username=subject, password_hash="x", created_at=T - DAY)
                         for number, subject in enumerate(subjects, start=1)])


async def add_grant(database: Database, grant_id: str, created_at: int, *, revoked_at: int | None = None,
                    user_id: int = 1, client_id: str = "client-a", refresh_expires_at: int | None = None) -> None:
    """A grant, with one refresh token of its family expiring at ``refresh_expires_at`` if given."""
    async with database.session() as session:
        session.add(Grant(id=grant_id, user_id=user_id, client_id=client_id, created_at=created_at,
                          revoked_at=revoked_at))
        if refresh_expires_at is not None:
            session.add(RefreshToken(token_hash=f"token-{grant_id}", family_id=grant_id, client_id=client_id,
                                     user_id=user_id, scope="contacts:read", resource="http://127.0.0.1/mcp",
                                     created_at=created_at, expires_at=refresh_expires_at, used_at=None,
                                     revoked_at=revoked_at))


async def grant_ids(database: Database) -> set[str]:
    async with database.session() as session:
        return set(await session.scalars(select(Grant.id)))


def purge(database: Database, tmp_path: Path) -> Purge:
    return Purge(database, tmp_path, Settings(data_dir=tmp_path / "data"))


# The purge ----------------------------------------------------------------------------------------


async def test_a_grant_goes_once_the_purge_keeps_no_refresh_token_of_it_and_its_access_tokens_expired(
        database: Database, tmp_path: Path) -> None:
    await users(database, "alice")
    await add_grant(database, "expired-family", T - 40 * DAY, refresh_expires_at=T - 8 * DAY)
    await add_grant(database, "revoked-family", T - 20 * DAY, revoked_at=T - 8 * DAY, refresh_expires_at=T + DAY)
    await add_grant(database, "never-refreshed", T - 2 * HOUR)  # no offline_access: no refresh token at all
    report = await purge(database, tmp_path).run(now=T)
    assert await grant_ids(database) == set()
    assert report.counts["grants"] == 3 and report.failed == []


async def test_a_grant_with_a_refresh_token_the_purge_keeps_is_kept_however_old(
        database: Database, tmp_path: Path) -> None:
    await users(database, "alice")
    await add_grant(database, "valid-token", T - 400 * DAY, refresh_expires_at=T + DAY)
    await add_grant(database, "expired-within-grace", T - 40 * DAY, refresh_expires_at=T - 6 * DAY)
    await add_grant(database, "revoked-within-grace", T - 40 * DAY, revoked_at=T - 6 * DAY,
                    refresh_expires_at=T + DAY)
    report = await purge(database, tmp_path).run(now=T)
    assert await grant_ids(database) == {"valid-token", "expired-within-grace", "revoked-within-grace"}
    assert report.counts["grants"] == 0


async def test_a_grant_is_kept_past_the_longest_access_token_lifetime_plus_a_margin(
        database: Database, tmp_path: Path) -> None:
    assert GRANT_KEPT_SECONDS >= ACCESS_TOKEN_SECONDS + 300  # the margin covers the largest clock leeway
    await users(database, "alice")
    await add_grant(database, "younger", T - GRANT_KEPT_SECONDS + 1)
    await add_grant(database, "older", T - GRANT_KEPT_SECONDS - 1)
    await purge(database, tmp_path).run(now=T)
    assert await grant_ids(database) == {"younger"}


async def test_a_revoked_grant_outlives_the_access_tokens_it_revoked(database: Database, tmp_path: Path) -> None:
    await users(database, "alice")
    await add_grant(database, "revoked-lately", T - 2 * DAY, revoked_at=T - ACCESS_TOKEN_SECONDS)
    await add_grant(database, "revoked-long-ago", T - 2 * DAY, revoked_at=T - GRANT_KEPT_SECONDS - 1)
    await purge(database, tmp_path).run(now=T)
    assert await grant_ids(database) == {"revoked-lately"}


async def test_a_dry_run_counts_the_grants_past_their_period_and_deletes_none(
        database: Database, tmp_path: Path) -> None:
    await users(database, "alice")
    await add_grant(database, "expired-family", T - 40 * DAY, refresh_expires_at=T - 8 * DAY)
    await add_grant(database, "never-refreshed", T - 2 * HOUR)
    await add_grant(database, "live", T - 40 * DAY, refresh_expires_at=T + DAY)
    counted = await purge(database, tmp_path).run(now=T, dry_run=True)
    assert counted.counts["grants"] == 2
    assert await grant_ids(database) == {"expired-family", "never-refreshed", "live"}
    done = await purge(database, tmp_path).run(now=T)
    assert done.counts["grants"] == 2 and await grant_ids(database) == {"live"}


# Deletion and export ------------------------------------------------------------------------------


async def test_deleting_a_person_deletes_their_grants_and_no_one_elses(database: Database, tmp_path: Path) -> None:
    await users(database, "alice", "bob")
    await add_grant(database, "alice-1", T - HOUR, user_id=1, refresh_expires_at=T + DAY)
    await add_grant(database, "alice-2", T - DAY, user_id=1, revoked_at=T - HOUR)
    await add_grant(database, "bob-1", T - HOUR, user_id=2)
    counts = await SubjectData(database, tmp_path).delete("alice")
    assert counts["grants"] == 2
    assert await grant_ids(database) == {"bob-1"}


async def test_an_account_removed_directly_takes_its_grants_with_it(database: Database, tmp_path: Path) -> None:
    """The foreign key cascade (``ringfence users remove`` deletes only the account row)."""
    from ringfence.authserver.users import UserStore

    await users(database, "alice", "bob")
    await add_grant(database, "alice-1", T - HOUR, user_id=1)
    await add_grant(database, "bob-1", T - HOUR, user_id=2)
    await UserStore(database).remove("alice")
    assert await grant_ids(database) == {"bob-1"}


async def test_the_export_lists_the_persons_grants_only_and_nothing_secret(
        database: Database, tmp_path: Path) -> None:
    await users(database, "alice", "bob")
    await add_grant(database, "alice-secret-sid-1", 1_700_000_000, user_id=1, client_id="client-a",
                    revoked_at=1_700_000_600)
    await add_grant(database, "alice-secret-sid-2", 1_700_003_600, user_id=1, client_id="client-b")
    await add_grant(database, "bob-secret-sid", 1_700_000_000, user_id=2, client_id="client-bob")
    document = await SubjectData(database, tmp_path).export("alice")
    assert document["grants"] == [
        {"client_id": "client-a", "created_at": "2023-11-14T22:13:20Z", "revoked_at": "2023-11-14T22:23:20Z"},
        {"client_id": "client-b", "created_at": "2023-11-14T23:13:20Z", "revoked_at": None},
    ]
    assert "secret-sid" not in repr(document)
