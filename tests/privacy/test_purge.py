"""The purge removes exactly what is past its retention period, on SQLite and PostgreSQL.

Rows are inserted with chosen timestamps around one moment ``T``; the purge runs "at" ``T``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ringfence.audit.log import AuditLog
from ringfence.authserver.models import (
    AuthorizationCode,
    BrowserSession,
    Consent,
    Grant,
    PendingSignIn,
    ProviderTokenRecord,
    RefreshToken,
    RegisteredClient,
    User,
)
from ringfence.config import Settings
from ringfence.guards.confirmation import PendingConfirmation
from ringfence.privacy.purge import Purge
from ringfence.store.database import Database

pytestmark = pytest.mark.anyio

HOUR, DAY = 3600, 86400
T = int(time.time())


def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def code(name: str, expires_at: int, used: bool = False) -> AuthorizationCode:
    return AuthorizationCode(code_hash=name, client_id="client-a", user_id=1, redirect_uri="http://127.0.0.1/cb",
                             scope="contacts:read", resource="http://127.0.0.1/mcp", code_challenge="x" * 43,
                             code_challenge_method="S256", family_id=f"family-{name}", expires_at=expires_at,
                             used_at=expires_at - 50 if used else None)


def token(name: str, family: str, *, expires_at: int, used: bool = False, revoked_at: int | None = None,
          client_id: str = "client-a") -> RefreshToken:
    return RefreshToken(token_hash=name, family_id=family, client_id=client_id, user_id=1, scope="contacts:read",
                        resource="http://127.0.0.1/mcp", created_at=expires_at - 30 * DAY, expires_at=expires_at,
                        used_at=expires_at - 29 * DAY if used else None, revoked_at=revoked_at)


def grant(family: str, created_at: int, *, revoked_at: int | None = None, user_id: int = 1,
          client_id: str = "client-a") -> Grant:
    return Grant(id=family, user_id=user_id, client_id=client_id, created_at=created_at, revoked_at=revoked_at)


def client(client_id: str, created_at: int) -> RegisteredClient:
    return RegisteredClient(client_id=client_id, client_name=client_id, secret_hash=None,
                            client_metadata={"redirect_uris": ["http://127.0.0.1/cb"]}, created_at=created_at)


def confirmation(name: str, expires_at: int, status: str = "pending") -> PendingConfirmation:
    return PendingConfirmation(handle_hash=name, page_id=f"page-{name}", tool="delete_contact", arguments_hash="a" * 64,
                               owner="http://127.0.0.1|alice", preview="delete your contact Ada", status=status,
                               expires_at=expires_at)


def pending_sign_in(name: str, expires_at: int) -> PendingSignIn:
    return PendingSignIn(state_hash=name, session_hash="s" * 64, provider="corp", nonce="n", code_verifier="v",
                         next_url="/account", user_id=None, created_at=expires_at - 600, expires_at=expires_at)


def provider_tokens(user_id: int, expires_at: int, *, refresh: bool) -> ProviderTokenRecord:
    return ProviderTokenRecord(user_id=user_id, provider="corp", scope="repo", access_token="v1.sealed",
                               refresh_token="v1.sealed" if refresh else None, expires_at=expires_at,
                               created_at=T - DAY, updated_at=T - DAY)


async def seed(database: Database) -> None:
    async with database.session() as session:
        session.add_all([User(id=number, subject=name, username=name, password_hash="x", created_at=T - 400 * DAY)
                         for number, name in ((1, "alice"), (2, "bob"), (3, "carol"))])
        await session.flush()
        session.add_all([
            # Codes: kept 24 hours past expiry (default), used or not.
            code("code-old-used", T - 25 * HOUR, used=True), code("code-old-unused", T - 25 * HOUR),
            code("code-recent-used", T - 23 * HOUR, used=True), code("code-live", T + 50),
            # Refresh families: a family dies when every token expired or was revoked, + 7 days (default).
            token("dead-1", "dead", expires_at=T - 20 * DAY, used=True),
            token("dead-2", "dead", expires_at=T - 8 * DAY),
            # A long-lived family: its oldest, used token expired long ago, but the newest is still valid,
            # so the old one must stay: replaying it has to revoke the family.
            token("alive-1", "alive", expires_at=T - 40 * DAY, used=True),
            token("alive-2", "alive", expires_at=T - 10 * DAY, used=True),
            token("alive-3", "alive", expires_at=T + 5 * DAY),
            token("grace-1", "grace", expires_at=T - 6 * DAY),  # expired, still within the grace
            token("revoked-old-1", "revoked-old", expires_at=T + 20 * DAY, revoked_at=T - 8 * DAY),
            token("revoked-new-1", "revoked-new", expires_at=T + 20 * DAY, revoked_at=T - 6 * DAY),
            # Grants: kept while their family is, and at least 75 minutes after being made or revoked.
            grant("dead", T - 50 * DAY), grant("alive", T - 70 * DAY), grant("grace", T - 36 * DAY),
            grant("revoked-old", T - 10 * DAY, revoked_at=T - 8 * DAY),
            grant("revoked-new", T - 10 * DAY, revoked_at=T - 6 * DAY),
            grant("no-refresh-old", T - 2 * HOUR), grant("no-refresh-new", T - 30 * 60),
            # Sign-in sessions: gone at expiry.
            BrowserSession(id_hash="session-expired", user_id=1, csrf_token="c", expires_at=T - 1),
            BrowserSession(id_hash="session-live", user_id=1, csrf_token="c", expires_at=T + HOUR),
            # Sign-ins sent to a login provider: gone once expired.
            pending_sign_in("sign-in-expired", T - 1), pending_sign_in("sign-in-live", T + 60),
            # Login-provider tokens: gone once the access token expired with no refresh token to renew it.
            provider_tokens(1, T - 1, refresh=False), provider_tokens(2, T - 1, refresh=True),
            provider_tokens(3, T + 60, refresh=False),
            # Confirmations: kept 1 hour past expiry (default).
            confirmation("confirm-old", T - 2 * HOUR, status="used"), confirmation("confirm-old-pending", T - 2 * HOUR),
            confirmation("confirm-recent", T - 30 * 60, status="declined"), confirmation("confirm-live", T + 60),
            # Registered clients: idle ones (no consent, token or code) go 30 days after registration.
            client("client-idle-old", T - 31 * DAY), client("client-idle-new", T - 29 * DAY),
            client("client-a", T - 400 * DAY),  # holds codes and tokens
            client("client-consented", T - 400 * DAY),
            Consent(user_id=1, client_id="client-consented", client_name="c", scope="contacts:read",
                    updated_at=T - 400 * DAY),
        ])


async def remaining(database: Database, column) -> set[str]:  # type: ignore[no-untyped-def]
    async with database.session() as session:
        return set(await session.scalars(select(column)))


async def test_purge_removes_exactly_what_is_past_retention(database: Database, tmp_path: Path) -> None:
    await seed(database)
    report = await Purge(database, tmp_path, settings(tmp_path)).run(now=T)

    assert await remaining(database, AuthorizationCode.code_hash) == {"code-recent-used", "code-live"}
    assert await remaining(database, RefreshToken.token_hash) == {
        "alive-1", "alive-2", "alive-3", "grace-1", "revoked-new-1"}
    assert await remaining(database, Grant.id) == {"alive", "grace", "revoked-new", "no-refresh-new"}
    assert await remaining(database, BrowserSession.id_hash) == {"session-live"}
    assert await remaining(database, PendingSignIn.state_hash) == {"sign-in-live"}
    assert await remaining(database, PendingConfirmation.handle_hash) == {"confirm-recent", "confirm-live"}
    assert await remaining(database, RegisteredClient.client_id) == {
        "client-idle-new", "client-a", "client-consented"}
    assert await remaining(database, Consent.client_id) == {"client-consented"}  # kept until revoked
    assert await remaining(database, User.subject) == {"alice", "bob", "carol"}
    assert await remaining(database, ProviderTokenRecord.user_id) == {2, 3}
    assert report.failed == []
    assert report.counts == {"authorization_codes": 2, "refresh_tokens": 3, "grants": 3, "browser_sessions": 1,
                             "pending_sign_ins": 1, "provider_tokens": 1, "confirmations": 2, "idle_clients": 1,
                             "audit_payloads": 0}


async def test_purge_is_idempotent_and_a_dry_run_changes_nothing(database: Database, tmp_path: Path) -> None:
    await seed(database)
    purge = Purge(database, tmp_path, settings(tmp_path))
    counted = await purge.run(now=T, dry_run=True)
    assert await remaining(database, RefreshToken.token_hash) >= {"dead-1", "dead-2", "revoked-old-1"}
    assert await remaining(database, Grant.id) >= {"dead", "revoked-old", "no-refresh-old"}
    done = await purge.run(now=T)
    assert counted.counts == done.counts
    again = await purge.run(now=T)
    assert set(again.counts.values()) == {0}


async def test_concurrent_purges_delete_each_row_once(database: Database, tmp_path: Path) -> None:
    """Several instances may purge at once: plain conditional DELETEs, whichever comes first wins."""
    await seed(database)
    reports = await asyncio.gather(*(Purge(database, tmp_path, settings(tmp_path)).run(now=T) for _ in range(3)))
    assert all(report.failed == [] for report in reports)
    assert sum(report.counts["refresh_tokens"] for report in reports) == 3
    assert sum(report.counts["authorization_codes"] for report in reports) == 2


async def test_audit_payloads_are_erased_after_retention_and_the_chain_still_verifies(
        database: Database, tmp_path: Path) -> None:
    log = AuditLog(database, tmp_path)
    for number in range(3):
        await log.append("tool.call", principal="alice", tool="search_contacts", outcome="ok",
                         payload={"argument_fields": ["query"], "n": number})
    purge = Purge(database, tmp_path, settings(tmp_path))
    kept = await purge.run()  # now: the records are new
    assert kept.counts["audit_payloads"] == 0
    later = datetime.now(UTC) + timedelta(days=366)
    erased = await purge.run(now=later.timestamp())
    assert erased.counts["audit_payloads"] == 3
    records = [record async for record in log.query(kind="tool.call")]
    assert [record.payload for record in records] == [None, None, None]
    assert all(record.erased_at is not None for record in records)
    assert (await log.verify()).ok


async def test_no_idle_client_purge_when_turned_off(database: Database, tmp_path: Path) -> None:
    await seed(database)
    await Purge(database, tmp_path, Settings(data_dir=tmp_path, retention_idle_client_days=0)).run(now=T)
    assert "client-idle-old" in await remaining(database, RegisteredClient.client_id)


async def test_a_failing_app_purge_hook_is_reported_and_the_other_kinds_still_run(
        database: Database, tmp_path: Path) -> None:
    from ringfence.personal_data import declare_personal_data

    async def export(subject: str) -> list:
        return []

    async def delete(subject: str) -> int:
        return 0

    async def broken(older_than: datetime) -> int:
        raise RuntimeError("the app's store is down")

    notes = declare_personal_data("notes", description="Notes you write.", data_classes=["user_content"],
                                  export=export, delete=delete, keep_days=30, purge=broken)
    await seed(database)
    report = await Purge(database, tmp_path, settings(tmp_path), {"notes": notes}).run(now=T)
    assert report.failed == ["app:notes"]
    assert report.counts["refresh_tokens"] == 3
