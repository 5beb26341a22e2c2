"""Access tokens of deleted accounts are refused at once, not when they expire.

The embedded server's access tokens are stateless JWTs (15 minutes); after an account is deleted
(``ringfence user delete`` or the account page) this check refuses them on the next request, with
one indexed lookup of the token's subject.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ringfence.authserver.models import User
from ringfence.refusals import InvalidToken, VerifierUnavailable
from ringfence.resource.tokens import TokenVerifier, VerifiedToken
from ringfence.store.database import Database


class LiveAccountVerifier:
    """A :class:`TokenVerifier` that also requires the token's subject to be a current account."""

    def __init__(self, inner: TokenVerifier, database: Database) -> None:
        self.inner = inner
        self.database = database

    async def verify(self, token: str) -> VerifiedToken:
        verified = await self.inner.verify(token)
        try:
            async with self.database.session() as session:
                exists = await session.scalar(select(User.id).where(User.subject == verified.subject))
        except (SQLAlchemyError, OSError):  # fail closed: an account that cannot be checked is not let through
            raise VerifierUnavailable("The account could not be checked; try again shortly.") from None
        if exists is None:
            raise InvalidToken("The access token's account no longer exists.")
        return verified
