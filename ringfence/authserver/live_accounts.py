"""Access tokens of deleted accounts are refused at once, not when they expire.

The embedded server's access tokens are stateless JWTs (15 minutes); after an account is deleted
(``ringfence user delete`` or the account page) this check refuses them within a second, with one
indexed lookup of the token's subject. A subject found is trusted for ``CONFIRMED_SECONDS`` so that
a busy caller costs one lookup a second, not one a request.
"""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ringfence.authserver.models import User
from ringfence.refusals import InvalidToken, VerifierUnavailable
from ringfence.resource.tokens import TokenVerifier, VerifiedToken
from ringfence.store.database import Database

CONFIRMED_SECONDS = 1.0
MAX_CONFIRMED = 10_000  # subjects remembered at once; the memory is dropped whole when full


class LiveAccountVerifier:
    """A :class:`TokenVerifier` that also requires the token's subject to be a current account."""

    def __init__(self, inner: TokenVerifier, database: Database) -> None:
        self.inner = inner
        self.database = database
        self._confirmed: dict[str, float] = {}  # subject -> when its account was last seen

    def forget(self, subject: str) -> None:
        """The account was deleted here: look it up again on its next token."""
        self._confirmed.pop(subject, None)

    async def verify(self, token: str) -> VerifiedToken:
        verified = await self.inner.verify(token)
        seen = self._confirmed.get(verified.subject)
        if seen is not None and time.monotonic() - seen < CONFIRMED_SECONDS:
            return verified
        try:
            async with self.database.session() as session:
                exists = await session.scalar(select(User.id).where(User.subject == verified.subject))
        except (SQLAlchemyError, OSError):  # fail closed: an account that cannot be checked is not let through
            raise VerifierUnavailable("The account could not be checked; try again shortly.") from None
        if exists is None:
            self._confirmed.pop(verified.subject, None)
            raise InvalidToken("The access token's account no longer exists.")
        if len(self._confirmed) >= MAX_CONFIRMED:
            self._confirmed.clear()
        self._confirmed[verified.subject] = time.monotonic()
        return verified
