"""The async SQLAlchemy engine every durable piece of state goes through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from ringfence.config import ConfigError

SUPPORTED_DRIVERS = {"sqlite+aiosqlite", "postgresql+asyncpg"}


class Model(DeclarativeBase):
    """Base class for an app's own tables; ringfence creates them at start-up."""


class InternalModel(DeclarativeBase):
    """Base class for ringfence's own tables (``ringfence_*``), kept apart from the app's."""


class Database:
    """One engine and session factory; SQLite gets WAL and foreign keys, its folder mode 0700."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise ConfigError("database URL is not a valid SQLAlchemy URL") from None
        if parsed.drivername not in SUPPORTED_DRIVERS:
            raise ConfigError(
                f"database driver {parsed.drivername!r} is not supported; use "
                "sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db"
            )
        self.url = parsed
        self.engine: AsyncEngine = create_async_engine(parsed, pool_pre_ping=True)
        if parsed.drivername.startswith("sqlite"):
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def start(self) -> None:
        """Create the data folder for SQLite, ringfence's tables and the app's."""
        if self.url.drivername.startswith("sqlite") and self.url.database:
            folder = Path(self.url.database).parent
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        async with self.engine.begin() as connection:
            await connection.run_sync(InternalModel.metadata.create_all)
            await connection.run_sync(Model.metadata.create_all)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed when the block ends, rolled back on error."""
        async with self._sessions() as session, session.begin():
            yield session

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
