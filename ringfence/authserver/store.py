"""Durable state of the authorization server, through the storage layer (SQLite or PostgreSQL).

Single use is atomic: a code or refresh token is marked used by one conditional UPDATE, so two
concurrent redemptions cannot both succeed, whichever process serves them.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from ringfence.authserver.models import AuthorizationCode, Consent, RefreshToken, RegisteredClient, User
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
    def __init__(self, database: Database) -> None:
        self.database = database

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
        """Mark the code used; a second redemption reports ``reused`` (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3)."""
        async with self.database.session() as session:
            record = await session.scalar(
                update(AuthorizationCode)
                .where(AuthorizationCode.code_hash == code_hash, AuthorizationCode.used_at.is_(None))
                .values(used_at=now())
                .returning(AuthorizationCode)
            )
            if record is None:
                used = await session.get(AuthorizationCode, code_hash)
                if used is not None:  # RFC 6749 §4.1.2: SHOULD revoke the tokens issued from it
                    await self._revoke_family(session, used.family_id)
                return Redemption(None, reused=used is not None)
        if record.client_id != client_id or record.expires_at < now():
            return Redemption(None)
        return Redemption(record)

    # Refresh tokens -------------------------------------------------------------------------

    async def add_refresh_token(self, token: RefreshToken) -> None:
        async with self.database.session() as session:
            session.add(token)

    async def redeem_refresh_token(self, token_hash: str) -> Redemption:
        """Rotation: mark the token used; presenting a used one revokes its whole family."""
        async with self.database.session() as session:
            record = await session.scalar(
                update(RefreshToken)
                .where(
                    RefreshToken.token_hash == token_hash,
                    RefreshToken.used_at.is_(None),
                    RefreshToken.revoked_at.is_(None),
                )
                .values(used_at=now())
                .returning(RefreshToken)
            )
            if record is None:
                known = await session.get(RefreshToken, token_hash)
                if known is not None:
                    await self._revoke_family(session, known.family_id)
                return Redemption(None, reused=known is not None)
        if record.expires_at < now():
            return Redemption(None)
        return Redemption(record)

    async def refresh_token(self, token_hash: str) -> RefreshToken | None:
        async with self.database.session() as session:
            return await session.get(RefreshToken, token_hash)

    async def revoke_family(self, family_id: str) -> None:
        async with self.database.session() as session:
            await self._revoke_family(session, family_id)

    @staticmethod
    async def _revoke_family(session, family_id: str) -> None:  # type: ignore[no-untyped-def]
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

    async def revoke_consent(self, user_id: int, client_id: str) -> None:
        """Forget the consent and revoke every refresh token the client holds for the user."""
        async with self.database.session() as session:
            await session.execute(delete(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id))
            await session.execute(
                update(RefreshToken)
                .where(RefreshToken.user_id == user_id, RefreshToken.client_id == client_id,
                       RefreshToken.revoked_at.is_(None))
                .values(revoked_at=now())
            )
