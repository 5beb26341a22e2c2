"""The grant check behind every access token of the embedded server, in process on SQLite.

A token's grant (its ``sid``) must be unrevoked and belong to a current account with the token's
subject. A live grant is looked up at most once a second (injected clock); a revocation made by
another process is seen within that second, one made through this process's store, or an account
deleted here, at once. When the database cannot answer, the token is refused (503), never let through.
A token naming no grant, or a grant the purge deleted, is refused; refresh tokens stored before
migration 0002 become grants.
The end-to-end versions (real servers, the real OAuth flow) are in test_revocation.py and
tests/instances/test_revocation.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from joserfc import jwt
from sqlalchemy import create_engine, text, update

from ringfence.authserver.holdings import GRANT_KEPT_SECONDS
from ringfence.authserver.keys import KeyRing
from ringfence.authserver.live_grants import CONFIRMED_SECONDS, LiveGrants
from ringfence.authserver.models import Consent, Grant
from ringfence.authserver.oauth import access_token_verifier
from ringfence.authserver.store import AuthStore, secret_hash
from ringfence.authserver.users import UserStore
from ringfence.config import Settings
from ringfence.privacy.purge import Purge
from ringfence.refusals import InvalidToken, VerifierUnavailable
from ringfence.resource.tokens import VerifiedToken
from ringfence.store.database import Database
from ringfence.store.schema import alembic_config

pytestmark = pytest.mark.anyio
PASSWORD = "a long enough password"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingDatabase:
    """The database, counting the sessions opened through it (one per grant lookup)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.lookups = 0

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Any]:
        self.lookups += 1
        async with self.database.session() as session:
            yield session


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'ringfence.db'}")
    await database.start()
    yield database
    await database.close()


async def grant_for(database: Database, username: str, *, client_id: str = "client-1",
                    grant_id: str = "grant-1") -> VerifiedToken:
    """A user with one grant, and what a verified access token of that grant says."""
    user = await UserStore(database).add(username, PASSWORD)
    async with database.session() as session:
        session.add(Grant(id=grant_id, user_id=user.id, client_id=client_id, created_at=0))
        session.add(Consent(user_id=user.id, client_id=client_id, client_name="Client", scope="", updated_at=0))
    return VerifiedToken(subject=user.subject, client_id=client_id, scopes=frozenset(), issuer="https://as.example",
                         expires_at=None, grant_id=grant_id)


async def refused(grants: LiveGrants, token: VerifiedToken) -> bool:
    try:
        await grants.check(token)
    except InvalidToken:
        return True
    return False


async def test_a_live_grant_is_looked_up_at_most_once_a_second(database: Database) -> None:
    token = await grant_for(database, "ada")
    counting, clock = CountingDatabase(database), Clock()
    grants = LiveGrants(counting, clock=clock)  # type: ignore[arg-type]
    for step in (0.0, 0.5, 0.99):
        clock.now = 1000.0 + step
        await grants.check(token)
    assert counting.lookups == 1
    clock.now = 1000.0 + CONFIRMED_SECONDS
    await grants.check(token)
    assert counting.lookups == 2


async def test_a_grant_revoked_by_another_process_is_refused_within_a_second(database: Database) -> None:
    """Another instance shares only the database: this one sees the revocation at its next lookup."""
    token = await grant_for(database, "ada")
    clock = Clock()
    grants = LiveGrants(database, clock=clock)
    await grants.check(token)
    async with database.session() as session:
        await session.execute(update(Grant).where(Grant.id == token.grant_id).values(revoked_at=1))
    clock.now += CONFIRMED_SECONDS - 0.01
    await grants.check(token)  # the confirmed second: the most a revocation elsewhere waits
    clock.now += 0.01
    assert await refused(grants, token)


async def test_a_grant_revoked_through_this_processs_store_is_refused_at_once(database: Database) -> None:
    """RFC 7009 §2: revocation, and a replayed code or refresh token, go through AuthStore.revoke_family."""
    token = await grant_for(database, "ada")
    grants = LiveGrants(database, clock=Clock())
    await grants.check(token)
    await AuthStore(database, revoked=grants.forget).revoke_family("grant-1")
    assert await refused(grants, token)


async def test_an_app_disconnected_here_has_every_grant_refused_at_once(database: Database) -> None:
    token = await grant_for(database, "ada")
    user_id = (await UserStore(database).list())[0].id
    async with database.session() as session:
        session.add(Grant(id="grant-2", user_id=user_id, client_id="client-1", created_at=0))
        session.add(Grant(id="grant-other-app", user_id=user_id, client_id="client-2", created_at=0))
    second = replace(token, grant_id="grant-2")
    other_app = replace(token, client_id="client-2", grant_id="grant-other-app")
    grants = LiveGrants(database, clock=Clock())
    for each in (token, second, other_app):
        await grants.check(each)
    await AuthStore(database, revoked=grants.forget).revoke_consent(user_id, "client-1")
    assert await refused(grants, token) and await refused(grants, second)
    await grants.check(other_app)  # the user's other app keeps working


async def test_an_account_deleted_here_is_refused_at_once_and_its_grants_go_with_it(database: Database) -> None:
    token = await grant_for(database, "ada")
    grants = LiveGrants(database, clock=Clock())
    await grants.check(token)
    await UserStore(database).remove("ada")
    grants.forget_subject(token.subject)
    assert await refused(grants, token)
    async with database.session() as session:
        assert await session.get(Grant, "grant-1") is None


async def test_a_token_whose_subject_is_not_its_grants_owner_is_refused(database: Database) -> None:
    token = await grant_for(database, "ada")
    other = await grant_for(database, "bob", grant_id="grant-bob")
    grants = LiveGrants(database, clock=Clock())
    assert await refused(grants, replace(token, subject=other.subject))


async def test_a_token_naming_no_grant_is_refused(database: Database) -> None:
    token = await grant_for(database, "ada")
    grants = LiveGrants(database, clock=Clock())
    assert await refused(grants, replace(token, grant_id=None))
    assert await refused(grants, replace(token, grant_id="no-such-grant"))


async def test_a_grant_deleted_by_the_purge_has_its_tokens_refused_not_accepted(
        database: Database, tmp_path: Path) -> None:
    """The purge deletes a grant once none of its tokens can matter; if one still came, it is refused."""
    token = await grant_for(database, "ada")  # made long ago (created_at 0), no refresh token
    revoked = await grant_for(database, "bob", grant_id="grant-revoked")
    await AuthStore(database).revoke_family("grant-revoked")
    clock = Clock()
    grants = LiveGrants(database, clock=clock)
    await grants.check(token)  # live, and confirmed for a second
    report = await Purge(database, tmp_path, Settings(data_dir=tmp_path / "data")).run(
        now=time.time() + GRANT_KEPT_SECONDS + 1)
    assert report.counts["grants"] == 2
    clock.now += CONFIRMED_SECONDS
    assert await refused(grants, token)
    assert await refused(grants, revoked)


async def test_an_unreachable_database_refuses_the_token_with_503(database: Database) -> None:
    """Fail closed: a grant that cannot be checked is not let through, once its confirmed second is over."""
    token = await grant_for(database, "ada")
    unreachable = Database("postgresql+asyncpg://ringfence@127.0.0.1:9/none")  # the discard port: refused
    clock = Clock()
    grants = LiveGrants(unreachable, clock=clock)
    try:
        with pytest.raises(VerifierUnavailable) as refusal:
            await grants.check(token)
    finally:
        await unreachable.close()
    assert refusal.value.status == 503


async def test_a_lookup_that_read_before_a_revocation_here_is_not_remembered(database: Database) -> None:
    """A call racing the revocation may pass, but its confirmation must not outlive the revocation."""
    token = await grant_for(database, "ada")
    read, release = asyncio.Event(), asyncio.Event()

    class SlowDatabase(CountingDatabase):
        @asynccontextmanager
        async def session(self) -> AsyncIterator[Any]:
            async with super().session() as session:
                yield SlowSession(session)

    class SlowSession:
        def __init__(self, session: Any) -> None:
            self.session = session

        async def scalar(self, query: Any) -> Any:
            found = await self.session.scalar(query)
            read.set()
            await release.wait()
            return found

    grants = LiveGrants(SlowDatabase(database), clock=Clock())  # type: ignore[arg-type]
    racing = asyncio.create_task(grants.check(token))
    await read.wait()  # the lookup has read the grant as live
    await AuthStore(database, revoked=grants.forget).revoke_family("grant-1")
    release.set()
    await racing  # concurrent with the revocation: let through
    assert await refused(grants, token)  # looked up again, not answered from a stale confirmation


# Refresh tokens issued before grants existed (migration 0002) --------------------------------------


def test_refresh_tokens_from_before_the_grants_migration_keep_working_and_revoked_ones_stay_revoked(
        tmp_path: Path) -> None:
    """Upgrading makes every refresh-token family a grant: live families refresh, revoked ones stay revoked."""
    url = f"sqlite:///{tmp_path / 'ringfence.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0001")
        connection.execute(text("INSERT INTO ringfence_users VALUES (1, 'sub-1', 'ada', 'hash', 0)"))
        for token, family, revoked in (("live", "family-live", None), ("used", "family-revoked", 5),
                                       ("successor", "family-revoked", None)):
            connection.execute(text(
                "INSERT INTO ringfence_refresh_tokens VALUES (:token, :family, 'client-1', 1, 'scope', "
                "'https://mcp.example/mcp', 0, 4102444800, NULL, :revoked)"),
                {"token": secret_hash(token), "family": family, "revoked": revoked})
    engine.dispose()

    async def upgraded() -> tuple[bool, bool]:
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'ringfence.db'}")
        await database.start()
        try:
            store = AuthStore(database)
            return ((await store.redeem_refresh_token(secret_hash("live"))).record is not None,
                    (await store.redeem_refresh_token(secret_hash("successor"))).record is not None)
        finally:
            await database.close()

    assert asyncio.run(upgraded()) == (True, False)


async def test_the_embedded_verifier_refuses_a_token_naming_no_grant(database: Database, tmp_path: Path) -> None:
    """A token without ``sid`` (signed before grants existed, or elsewhere) cannot be revoked: refused."""
    token = await grant_for(database, "ada")
    ring = KeyRing(tmp_path / "keys", token_lifetime=900)
    ring.load()
    check = access_token_verifier("https://as.example", "https://as.example/mcp", ring, LiveGrants(database),
                                  leeway=0)
    now = int(time.time())
    claims = {"iss": "https://as.example", "aud": "https://as.example/mcp", "sub": token.subject,
              "client_id": "client-1", "iat": now, "exp": now + 900, "scope": ""}
    header = {"alg": "ES256", "typ": "at+jwt", "kid": ring.active.kid}
    assert (await check.verify(jwt.encode(header, {**claims, "sid": "grant-1"}, ring.active.key))).grant_id == "grant-1"
    with pytest.raises(InvalidToken, match="sid"):
        await check.verify(jwt.encode(header, claims, ring.active.key))
