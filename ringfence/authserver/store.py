"""Durable state of the authorization server, through the storage layer (SQLite or PostgreSQL).

Single use is atomic: a code or refresh token is marked used by one conditional UPDATE, so two
concurrent redemptions cannot both succeed, whichever process serves them.

A grant is made in the same transaction that redeems its code, and every revocation marks grants
revoked in the database, where every instance's token check sees it within a second (the
``revoked`` callback tells this instance's at once).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import delete, exists, select, update

from ringfence.authserver.models import (
    AuthorizationCode,
    BrowserSession,
    Consent,
    Grant,
    RefreshToken,
    RegisteredClient,
    User,
)
from ringfence.store.database import Database


def secret_hash(value: str) -> str:
    """SHA-256 of a high-entropy secret (codes, tokens, client secrets); passwords use argon2id instead."""
    return hashlib.sha256(value.encode()).hexdigest()


def now() -> int:
    return int(time.time())


@dataclass(frozen=True)
class Redemption:
    """The outcome of presenting a single-use credential."""

    record: AuthorizationCode | RefreshToken | None
    reused: bool = False


class AuthStore:
    def __init__(self, database: Database, *,
                 revoked: Callable[[Iterable[str]], None] = lambda grant_ids: None) -> None:
        self.database = database
        self.revoked = revoked  # called with the ids of the grants just revoked, once committed

    # Users ----------------------------------------------------------------------------------

    async def user(self, user_id: int) -> User | None:
        async with self.database.session() as session:
            return await session.get(User, user_id)

    # Registered clients ---------------------------------------------------------------------

    async def registered_client(self, client_id: str) -> RegisteredClient | None:
        async with self.database.session() as session:
            return await session.get(RegisteredClient, client_id)

    async def add_client(self, client: RegisteredClient) -> None:
        async with self.database.session() as session:
            session.add(client)

    # Authorization codes --------------------------------------------------------------------

    async def add_code(self, code: AuthorizationCode) -> None:
        async with self.database.session() as session:
            session.add(code)

    async def redeem_code(self, code_hash: str, client_id: str) -> Redemption:
        """Mark the code used and make its grant; a second redemption reports ``reused`` and revokes
        the grant (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3)."""
        async with self.database.session() as session:
            record = await session.scalar(
                update(AuthorizationCode)
                .where(AuthorizationCode.code_hash == code_hash, AuthorizationCode.used_at.is_(None))
                .values(used_at=now())
                .returning(AuthorizationCode)
            )
            replayed = await session.get(AuthorizationCode, code_hash) if record is None else None
            if replayed is not None:  # RFC 6749 §4.1.2: SHOULD revoke the tokens issued from it
                await self._revoke_family(session, replayed.family_id)
            valid = record is not None and record.client_id == client_id and record.expires_at >= now()
            if valid:  # made as the code is redeemed: a replay, however soon, finds the grant to revoke
                session.add(Grant(id=record.family_id, user_id=record.user_id, client_id=record.client_id,
                                  created_at=now()))
        if replayed is not None:
            self.revoked([replayed.family_id])
        return Redemption(record if valid else None, reused=replayed is not None)

    # Refresh tokens -------------------------------------------------------------------------

    async def add_refresh_token(self, token: RefreshToken) -> None:
        async with self.database.session() as session:
            session.add(token)

    async def redeem_refresh_token(self, token_hash: str) -> Redemption:
        """Rotation: mark the token used; presenting a used one revokes its whole family (OAuth 2.1 §4.3.1)."""
        async with self.database.session() as session:
            live_grant = exists().where(Grant.id == RefreshToken.family_id, Grant.revoked_at.is_(None))
            record = await session.scalar(
                update(RefreshToken)
                .where(
                    RefreshToken.token_hash == token_hash,
                    RefreshToken.used_at.is_(None),
                    RefreshToken.revoked_at.is_(None),
                    live_grant,  # also refuses a token saved just after its grant was revoked
                )
                .values(used_at=now())
                .returning(RefreshToken)
            )
            reused = await session.get(RefreshToken, token_hash) if record is None else None
            if reused is not None:
                await self._revoke_family(session, reused.family_id)
        if reused is not None:
            self.revoked([reused.family_id])
        if record is None or record.expires_at < now():
            return Redemption(None, reused=reused is not None)
        return Redemption(record)

    async def refresh_token(self, token_hash: str) -> RefreshToken | None:
        async with self.database.session() as session:
            return await session.get(RefreshToken, token_hash)

    async def revoke_family(self, family_id: str) -> None:
        """RFC 7009 §2.1: revoke the grant, with its access tokens and every refresh token of its family."""
        async with self.database.session() as session:
            await self._revoke_family(session, family_id)
        self.revoked([family_id])

    @staticmethod
    async def _revoke_family(session, family_id: str) -> None:  # type: ignore[no-untyped-def]
        await session.execute(update(Grant).where(Grant.id == family_id, Grant.revoked_at.is_(None))
                              .values(revoked_at=now()))
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now())
        )

    # Consents -------------------------------------------------------------------------------

    async def consented_scopes(self, user_id: int, client_id: str) -> frozenset[str]:
        async with self.database.session() as session:
            consent = await session.get(Consent, (user_id, client_id))
            return frozenset(consent.scope.split()) if consent else frozenset()

    async def remember_consent(self, user_id: int, client_id: str, client_name: str, scopes: frozenset[str]) -> None:
        async with self.database.session() as session:
            consent = await session.get(Consent, (user_id, client_id))
            if consent is None:
                session.add(Consent(user_id=user_id, client_id=client_id, client_name=client_name,
                                    scope=" ".join(sorted(scopes)), updated_at=now()))
            else:
                consent.scope = " ".join(sorted(scopes | set(consent.scope.split())))
                consent.client_name = client_name
                consent.updated_at = now()

    async def consents(self, user_id: int) -> list[Consent]:
        async with self.database.session() as session:
            query = select(Consent).where(Consent.user_id == user_id).order_by(Consent.client_name)
            return list(await session.scalars(query))

    async def end_access(self, user_id: int) -> int:
        """Revoke every grant of the account (tokens and all) and end its browser sessions; how many ended."""
        async with self.database.session() as session:
            grant_ids = list(await session.scalars(
                update(Grant).where(Grant.user_id == user_id, Grant.revoked_at.is_(None))
                .values(revoked_at=now()).returning(Grant.id)))
            await session.execute(update(RefreshToken).where(RefreshToken.user_id == user_id,
                                                             RefreshToken.revoked_at.is_(None))
                                  .values(revoked_at=now()))
            ended = await session.execute(delete(BrowserSession).where(BrowserSession.user_id == user_id))
        self.revoked(grant_ids)
        return len(grant_ids) + int(ended.rowcount or 0)

    async def revoke_consent(self, user_id: int, client_id: str) -> None:
        """Forget the consent and revoke every grant the client holds for the user, tokens and all."""
        async with self.database.session() as session:
            await session.execute(delete(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id))
            grant_ids = list(await session.scalars(
                update(Grant)
                .where(Grant.user_id == user_id, Grant.client_id == client_id, Grant.revoked_at.is_(None))
                .values(revoked_at=now())
                .returning(Grant.id)
            ))
            await session.execute(
                update(RefreshToken)
                .where(RefreshToken.user_id == user_id, RefreshToken.client_id == client_id,
                       RefreshToken.revoked_at.is_(None))
                .values(revoked_at=now())
            )
        self.revoked(grant_ids)
