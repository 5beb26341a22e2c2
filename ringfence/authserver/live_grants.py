"""Access tokens stop working within a second of their grant's revocation or their account's deletion.

The embedded server's access tokens are stateless JWTs (15 minutes), each naming in its ``sid``
claim the grant it came from (made when the authorization code was exchanged; its refresh tokens
are one rotation family). Every revocation marks the grant revoked in the database: RFC 7009
revocation at ``/revoke``, the app disconnected on ``/account``, a replayed code (RFC 6749 §4.1.2)
or refresh token (OAuth 2.1 §4.3.1). Deleting an account deletes its grants, and the purge deletes a
grant once none of its tokens can still be valid (ringfence/privacy/retention.py): a token whose
grant no longer exists is refused, like a revoked one.

Each call checks, with one indexed lookup, that its token's grant is unrevoked and belongs to a
current account with the token's subject. A grant found live is trusted for
:data:`CONFIRMED_SECONDS`, so that a busy client costs one lookup a second, not one a call. The
database is shared, so a revocation on any instance is seen on every instance within that second;
the instance that revoked it (or deleted the account) forgets the confirmation at once. When the
database cannot answer, the call is refused (503), never let through.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ringfence.authserver.models import Grant, User
from ringfence.refusals import InvalidToken, VerifierUnavailable
from ringfence.resource.tokens import ExpiringMap, TokenVerifier, VerifiedToken
from ringfence.store.database import Database

GRANT_CLAIM = "sid"  # IANA JWT claim "Session ID": here, the grant (refresh-token family) id
CONFIRMED_SECONDS = 1.0
MAX_CONFIRMED = 10_000  # grants remembered at once; the oldest confirmation makes room


class LiveGrants:
    """Which grants are live: confirmed against the database at most once a second each."""

    def __init__(self, database: Database, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.database = database
        self._clock = clock
        self._confirmed: ExpiringMap[str, str] = ExpiringMap(MAX_CONFIRMED, clock)  # grant id -> its subject
        self._forgotten = 0  # counts forgettings: a lookup that began before one is not remembered

    def forget(self, grant_ids: Iterable[str]) -> None:
        """These grants were revoked here: look them up again on their next token."""
        self._forgotten += 1
        for grant_id in grant_ids:
            self._confirmed.discard(grant_id)

    def forget_subject(self, subject: str) -> None:
        """The account was deleted here: look its grants up again on their next token."""
        self._forgotten += 1
        self._confirmed.discard_values(lambda confirmed: confirmed == subject)

    async def check(self, token: VerifiedToken) -> None:
        """Refuse the token unless its grant is unrevoked and its account the token's subject's."""
        if token.grant_id is None:
            raise InvalidToken("The access token names no grant.")
        if self._confirmed.get(token.grant_id) == token.subject:
            return
        forgotten = self._forgotten
        query = (select(Grant.id).join(User, User.id == Grant.user_id)
                 .where(Grant.id == token.grant_id, Grant.revoked_at.is_(None), User.subject == token.subject))
        try:
            async with self.database.session() as session:
                live = await session.scalar(query)
        except (SQLAlchemyError, OSError):  # fail closed: a grant that cannot be checked is not let through
            raise VerifierUnavailable("The access token could not be checked; try again shortly.") from None
        if live is None:
            self._confirmed.discard(token.grant_id)
            raise InvalidToken("The access token was revoked, or its account no longer exists.")
        if forgotten == self._forgotten:  # else a revocation here may have committed after the lookup read
            self._confirmed.put(token.grant_id, token.subject, self._clock() + CONFIRMED_SECONDS)


class LiveGrantVerifier:
    """A :class:`TokenVerifier` that also requires the token's grant to be live (see :class:`LiveGrants`)."""

    def __init__(self, inner: TokenVerifier, grants: LiveGrants) -> None:
        self.inner = inner
        self.grants = grants

    async def verify(self, token: str) -> VerifiedToken:
        verified = await self.inner.verify(token)
        await self.grants.check(verified)
        return verified
