"""Local user accounts with argon2id password hashes (computed off the event loop: :mod:`.passwords`)."""

from __future__ import annotations

import re
import secrets

from sqlalchemy import delete, func, select

from ringfence.authserver.models import User
from ringfence.authserver.passwords import hash_password, needs_rehash, verify_password
from ringfence.authserver.store import now
from ringfence.store.database import Database

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


class UserError(ValueError):
    """A user operation that cannot be done; the message says why."""


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError("the password is too long")


class UserStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def add(self, username: str, password: str) -> User:
        if not USERNAME.match(username):
            raise UserError("a username is 1-64 letters, digits, '_', '.', '@' or '-'")
        check_password(password)
        password_hash = await hash_password(password)
        async with self.database.session() as session:
            if await session.scalar(select(User).where(User.username == username)):
                raise UserError(f"user {username!r} already exists")
            user = User(subject=secrets.token_hex(16), username=username, password_hash=password_hash,
                        created_at=now())
            session.add(user)
        return user

    async def authenticate(self, username: str, password: str) -> User | None:
        """The user, when the password matches; ``None`` otherwise, in about the same time."""
        if len(password) > MAX_PASSWORD_LENGTH:
            return None
        async with self.database.session() as session:
            user = await session.scalar(select(User).where(User.username == username))
        # Checked with no database session open: a queue of sign-ins holds no connection. An account of a
        # login provider has no password (an empty hash): checked as a missing account is, in the same time.
        if not await verify_password(user.password_hash if user and user.password_hash else None, password) \
                or user is None:
            return None
        if needs_rehash(user.password_hash):
            password_hash = await hash_password(password)
            async with self.database.session() as session:
                stored = await session.get(User, user.id)
                if stored is not None:
                    stored.password_hash = password_hash
        return user

    async def set_password(self, username: str, password: str) -> None:
        check_password(password)
        password_hash = await hash_password(password)
        async with self.database.session() as session:
            user = await session.scalar(select(User).where(User.username == username))
            if user is None:
                raise UserError(f"no user {username!r}")
            if not user.password_hash:
                raise UserError(f"user {username!r} signs in at a login provider and has no password")
            user.password_hash = password_hash

    async def remove(self, username: str) -> None:
        async with self.database.session() as session:
            result = await session.execute(delete(User).where(User.username == username))
            if result.rowcount == 0:
                raise UserError(f"no user {username!r}")

    async def list(self) -> list[User]:
        async with self.database.session() as session:
            return list(await session.scalars(select(User).order_by(User.username)))

    async def subject_of(self, username: str) -> str | None:
        """The token subject of a local account; ``None``: there is no such account."""
        async with self.database.session() as session:
            return await session.scalar(select(User.subject).where(User.username == username))

    async def count(self) -> int:
        async with self.database.session() as session:
            return int(await session.scalar(select(func.count()).select_from(User)) or 0)
