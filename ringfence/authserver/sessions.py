"""Sign-in sessions of the login and consent pages, with their CSRF tokens.

The cookie is ``__Host-``-prefixed, ``Secure``, ``HttpOnly`` and ``SameSite=Lax`` (MCP security
best practices: consent cookies); on plain-http loopback, where browsers refuse ``Secure`` cookies
from some hosts, it drops the prefix and ``Secure``. Only a hash of the id is stored.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import delete
from starlette.requests import Request
from starlette.responses import Response

from ringfence.authserver.models import BrowserSession
from ringfence.authserver.store import now, secret_hash
from ringfence.store.database import Database

SESSION_SECONDS = 12 * 3600


@dataclass
class Session:
    id: str
    user_id: int | None
    csrf_token: str
    new: bool = False

    def csrf_matches(self, submitted: object) -> bool:
        # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, then a 500).
        return isinstance(submitted, str) and hmac.compare_digest(
            submitted.encode("utf-8", "surrogatepass"), self.csrf_token.encode())


class BrowserSessions:
    def __init__(self, database: Database, *, secure: bool) -> None:
        self.database = database
        self.secure = secure
        self.cookie_name = "__Host-ringfence" if secure else "ringfence_session"

    async def current(self, request: Request) -> Session | None:
        session_id = request.cookies.get(self.cookie_name)
        if not session_id or len(session_id) > 128:
            return None
        async with self.database.session() as db:
            record = await db.get(BrowserSession, secret_hash(session_id))
            if record is None or record.expires_at < now():
                return None
            return Session(session_id, record.user_id, record.csrf_token)

    async def ensure(self, request: Request) -> Session:
        return await self.current(request) or await self._create(None)

    async def sign_in(self, previous: Session | None, user_id: int) -> Session:
        """A fresh session for the user; the old id dies (no session fixation)."""
        if previous is not None:
            await self.end(previous)
        return await self._create(user_id)

    async def end(self, session: Session) -> None:
        async with self.database.session() as db:
            await db.execute(delete(BrowserSession).where(BrowserSession.id_hash == secret_hash(session.id)))

    def attach(self, response: Response, session: Session) -> None:
        if session.new:
            response.set_cookie(self.cookie_name, session.id, max_age=SESSION_SECONDS, path="/",
                                secure=self.secure, httponly=True, samesite="lax")

    def clear(self, response: Response) -> None:
        response.delete_cookie(self.cookie_name, path="/", secure=self.secure, httponly=True, samesite="lax")

    async def _create(self, user_id: int | None) -> Session:
        session = Session(secrets.token_urlsafe(32), user_id, secrets.token_urlsafe(32), new=True)
        async with self.database.session() as db:
            db.add(BrowserSession(id_hash=secret_hash(session.id), user_id=user_id,
                                  csrf_token=session.csrf_token, expires_at=now() + SESSION_SECONDS))
        return session
