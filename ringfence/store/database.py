"""The async SQLAlchemy engine every durable piece of state goes through."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from ringfence.config import ConfigError
from ringfence.store import row_security, schema
from ringfence.store.owned import SCOPE_KEY, Owned, OwnerScope, ScopedSession
from ringfence.store.private import private_file, private_folder

SUPPORTED_DRIVERS = {"sqlite+aiosqlite", "postgresql+asyncpg"}


class Model(DeclarativeBase):
    """Base class for an app's own tables; ringfence creates missing ones at start-up.

    Only missing tables are created: changing an existing table is the app's own migration
    (e.g. its own Alembic history), as ringfence migrates only its ``ringfence_*`` tables.
    """


class InternalModel(DeclarativeBase):
    """Base class for ringfence's own tables (``ringfence_*``), kept apart from the app's."""


class Database:
    """One engine and session factory; SQLite gets WAL and foreign keys, its folder mode 0700 and
    its files (the database, its write-ahead log and shared memory) mode 0600.

    Its async engine belongs to the event loop that uses it, as SQLAlchemy's does: give each thread
    that runs a loop of its own a ``Database`` of its own."""

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
        # A pooled PostgreSQL connection may have died with a server restart: ping it on checkout.
        # SQLite's connections are to a local file and need no ping (it costs a round trip per use).
        sqlite = parsed.drivername.startswith("sqlite")
        self.engine: AsyncEngine = create_async_engine(parsed, pool_pre_ping=not sqlite)
        if parsed.drivername.startswith("sqlite"):
            event.listen(self.engine.sync_engine, "connect", sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False, sync_session_class=ScopedSession)
        # PostgreSQL with owned tables: NotStarted until start() puts row-level security in force
        self._row_security: row_security.RowSecurity | row_security.NotStarted | None = None
        self._started = False
        self._schema_ready = False
        self._sqlite_sync: Engine | None = None
        self._sqlite_own: sqlite3.Connection | None = None  # see sqlite_connection
        self._sqlite_lock = threading.Lock()
        self._postgres_connections: list[asyncpg.Connection] = []

    async def start(self) -> None:
        """Create the data folder for SQLite, migrate ringfence's tables, create the app's missing ones;
        on PostgreSQL, put the owned ones under row-level security (:mod:`.row_security`)."""
        await self.upgrade_schema()
        async with self.engine.begin() as connection:
            await schema.schema_lock(connection)  # instances starting together create each table once
            await connection.run_sync(Model.metadata.create_all)
            owned = owned_tables()
            if owned and connection.dialect.name == "postgresql":
                tables = [*schema.internal_metadata().sorted_tables, *Model.metadata.sorted_tables]
                self._row_security = await row_security.enforce(connection, owned, tables)
        self._started = True

    async def upgrade_schema(self) -> None:
        """Bring ringfence's own tables to the newest migration (once per instance; see :mod:`.schema`)."""
        if self._schema_ready:
            return
        if (path := self.sqlite_file) is not None:
            private_folder(path.parent)
            private_file(path)  # before SQLite opens it, which would create it readable by everyone
        await schema.upgrade(self.engine)
        self._schema_ready = True

    @asynccontextmanager
    async def session(self, *, owner: str | None = None,
                      unsafe_all_owners: bool = False) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed when the block ends, rolled back on error.

        It reads and writes the rows of :class:`~ringfence.store.owned.Owned` tables of one person:
        ``owner`` (a token subject) when given, else the verified caller of the tool now running;
        with neither, nobody's (reads find none, writes are refused). ``unsafe_all_owners=True``
        gives that up, for work across everybody (a purge). Statements the owner criteria cannot
        reach raise :class:`~ringfence.store.owned.OwnershipError` (:mod:`.owned`,
        :mod:`.row_security`).
        """
        scope = OwnerScope.resolve(owner, unsafe_all_owners)
        info = {SCOPE_KEY: scope, row_security.ROW_SECURITY_KEY: self._row_security_now()}
        async with self._sessions(info=info) as session, session.begin():
            yield session

    def _row_security_now(self) -> row_security.RowSecurity | row_security.NotStarted | None:
        """What a session opened now is held to: before start(), PostgreSQL with owned tables declared
        may lack row-level security (fail closed: its sessions refuse raw SQL)."""
        if not self._started and self.url.get_backend_name() == "postgresql" and owned_tables():
            return row_security.NotStarted()
        return self._row_security

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database file, or ``None`` (PostgreSQL, or SQLite in memory)."""
        name = self.url.database
        if self.url.get_backend_name() != "sqlite" or not name or name == ":memory:" or name.startswith("file:"):
            return None
        return Path(name)

    def missing_sqlite_file(self) -> str | None:
        """The SQLite file this database names, if it does not exist yet (connecting would create it
        empty: a command that reads or records must refuse instead); ``None`` otherwise."""
        path = self.sqlite_file
        return None if path is None or path.exists() else str(path)

    @contextlib.contextmanager
    def sqlite_connection(self, *, blocking: bool = True) -> Iterator[sqlite3.Connection | None]:
        """The SQLite file's own connection, for short work done whole in one thread (the audit log's
        appends): one user at a time, from any thread; ``None`` when another has it and not ``blocking``.
        Made on first use, with the pool's settings; closed by :meth:`close`.

        Each statement through the async engine is several hand-offs to aiosqlite's thread, and a
        pooled connection costs a checkout, a reset and a checkin (about 20 µs a use); this costs none.
        """
        if not self._sqlite_lock.acquire(blocking=blocking):
            yield None
            return
        try:
            if self._sqlite_own is None:
                if self._sqlite_sync is None:  # made by SQLAlchemy: its URL handling and the connect pragmas
                    self._sqlite_sync = create_engine(self.url.set(drivername="sqlite"),
                                                      connect_args={"check_same_thread": False})
                    event.listen(self._sqlite_sync, "connect", sqlite_pragmas)
                pooled = self._sqlite_sync.raw_connection()
                pooled.detach()  # out of the pool: closed only by close()
                self._sqlite_own = pooled.dbapi_connection
            yield self._sqlite_own
        finally:
            self._sqlite_lock.release()

    async def connect_postgres(self, **server_settings: str) -> asyncpg.Connection:
        """A PostgreSQL connection of its own, outside the pool, with these session settings; closed by
        :meth:`close`.

        For a hot path that cannot afford SQLAlchemy's cost per statement nor the pool's ping per
        checkout (the audit log's appends); its owner opens another one when it breaks.
        """
        _, params = self.engine.dialect.create_connect_args(self.url)
        params.pop("prepared_statement_cache_size", None)  # SQLAlchemy's option, not asyncpg's
        connection = await asyncpg.connect(**params, server_settings=server_settings)
        self._postgres_connections = [c for c in self._postgres_connections if not c.is_closed()] + [connection]
        return connection

    async def close(self) -> None:
        await self.engine.dispose()
        with self._sqlite_lock:
            if self._sqlite_own is not None:
                self._sqlite_own.close()
                self._sqlite_own = None
        if self._sqlite_sync is not None:
            self._sqlite_sync.dispose()
        connections, self._postgres_connections = self._postgres_connections, []
        for connection in connections:
            # Best effort: one opened under an earlier event loop cannot be closed from this one.
            with contextlib.suppress(Exception):
                await connection.close(timeout=5)


def owned_tables() -> list[Table]:
    """The app's tables declared :class:`~ringfence.store.owned.Owned`, each once."""
    tables = {mapper.local_table: None for mapper in Model.registry.mappers if issubclass(mapper.class_, Owned)}
    return [table for table in tables if isinstance(table, Table)]


def sqlite_pragmas(connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL + NORMAL: a committed transaction survives the process being killed (the audit log's
    # promise: an acknowledged call has its record); only an OS crash or power cut may lose the
    # last commits. Use PostgreSQL where that matters too. FULL costs an fsync per commit.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
