"""Accounts of people who sign in at a login provider, and the sign-ins on their way there.

An account is found by the provider's issuer and subject only. The first sign-in provisions it;
an e-mail address never links it to another account, local or from another provider (whoever
controls an address at one provider is not thereby the owner of an account made elsewhere).

A sign-in sent to a provider is kept as a :class:`PendingSignIn` row: bound to the browser session
that started it, keyed by a hash of its ``state``, used once, and gone after ten minutes.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from ringfence.authserver.login_providers import LoginProvider
from ringfence.authserver.models import PendingSignIn, SignInIdentity, User
from ringfence.authserver.sessions import Session
from ringfence.authserver.store import now, secret_hash
from ringfence.authserver.upstream import Attempt, UpstreamIdentity, asks_for_access
from ringfence.store.database import Database

PENDING_SECONDS = 600


class SignInIdentities:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def start(self, session: Session, provider: str, next_url: str, *, user_id: int | None = None) -> Attempt:
        """A new attempt for this browser session; ``user_id``: the account must sign in again."""
        moment = now()
        attempt = Attempt(state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32),
                          code_verifier=secrets.token_urlsafe(64), started_at=moment,
                          reauthenticate=user_id is not None,
                          access=user_id is None and asks_for_access(next_url))
        async with self.database.session() as db:
            await db.execute(delete(PendingSignIn).where(PendingSignIn.expires_at < moment))
            db.add(PendingSignIn(state_hash=secret_hash(attempt.state), session_hash=secret_hash(session.id),
                                 provider=provider, nonce=attempt.nonce, code_verifier=attempt.code_verifier,
                                 next_url=next_url, user_id=user_id, created_at=moment,
                                 expires_at=moment + PENDING_SECONDS))
        return attempt

    async def take(self, state: str, session: Session | None, provider: str) -> tuple[Attempt, str, int | None] | None:
        """The attempt ``state`` names, its next URL and the account it re-authenticates, once: only to the
        browser session that started it, at the provider it went to, within its ten minutes."""
        if session is None or not state or len(state) > 128:
            return None
        async with self.database.session() as db:
            pending = await db.get(PendingSignIn, secret_hash(state))
            if (pending is None or pending.expires_at < now() or pending.provider != provider
                    or not secrets.compare_digest(pending.session_hash, secret_hash(session.id))):
                return None  # another browser's answer leaves the attempt to its own browser
            taken = await db.execute(delete(PendingSignIn).where(PendingSignIn.state_hash == pending.state_hash))
            if taken.rowcount != 1:  # a concurrent request took it first
                return None
        attempt = Attempt(state=state, nonce=pending.nonce, code_verifier=pending.code_verifier,
                          started_at=pending.created_at, reauthenticate=pending.user_id is not None,
                          access=pending.user_id is None and asks_for_access(pending.next_url))
        return attempt, pending.next_url, pending.user_id

    async def account(self, provider: LoginProvider, identity: UpstreamIdentity) -> tuple[User, bool]:
        """The account of ``identity``, and whether this first sign-in provisioned it."""
        for _ in range(2):  # a second try when a concurrent first sign-in made it meanwhile
            async with self.database.session() as db:
                known = await db.scalar(select(SignInIdentity).where(SignInIdentity.issuer == identity.issuer,
                                                                     SignInIdentity.subject == identity.subject))
                if known is not None:
                    known.email = identity.email
                    user = await db.get(User, known.user_id)
                    assert user is not None  # the identity row goes with its user (cascade)
                    return user, False
            try:
                return await self._provision(provider, identity), True
            except IntegrityError:
                continue
        raise RuntimeError("the account could not be provisioned")

    async def _provision(self, provider: LoginProvider, identity: UpstreamIdentity) -> User:
        username = f"{provider.name}:{identity.display}"[:64]
        async with self.database.session() as db:
            if await db.scalar(select(User.id).where(User.username == username)) is not None:
                # The same display name at this provider, another subject: keep both apart.
                tag = hashlib.sha256(identity.subject.encode()).hexdigest()[:8]
                username = f"{username[:55]}~{tag}"
            user = User(subject=secrets.token_hex(16), username=username, password_hash="", created_at=now())
            db.add(user)
            await db.flush()
            db.add(SignInIdentity(user_id=user.id, provider=provider.name, issuer=identity.issuer,
                                  subject=identity.subject, email=identity.email, created_at=now()))
        return user

    async def not_admitted(self, providers: tuple[LoginProvider, ...]) -> list[tuple[User, str]]:
        """Accounts the current rules would not let sign in, each with why: their provider is no longer
        offered, or the verified e-mail address kept from their last sign-in is not admitted. Providers that
        admit GitHub organisations are left out: membership is known only at a sign-in."""
        offered = {provider.name: provider for provider in providers}
        async with self.database.session() as db:
            rows = (await db.execute(select(User, SignInIdentity).join(
                SignInIdentity, SignInIdentity.user_id == User.id))).all()
        refused = []
        for user, identity in rows:
            provider = offered.get(identity.provider)
            if provider is None:
                refused.append((user, f"login provider {identity.provider} is no longer offered"))
            elif not provider.admission.orgs and not provider.admission.admits(identity.email):
                refused.append((user, f"login provider {identity.provider}'s rules no longer admit it"))
        return refused

    async def of(self, user_id: int) -> SignInIdentity | None:
        """Where the account signs in; ``None``: a local account (a password)."""
        async with self.database.session() as db:
            return await db.get(SignInIdentity, user_id)
