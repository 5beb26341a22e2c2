"""ringfence's own tables (``ringfence_*``), kept at the newest migration by Alembic.

Every process upgrades at start-up, one at a time: the upgrade runs in one transaction that first
takes a lock (PostgreSQL: a transaction-scoped advisory lock; SQLite: ``BEGIN IMMEDIATE``, the
database's write lock), so the second process to start waits, then finds the schema at head.
The revision applied is recorded in ``ringfence_alembic_version``, never in ``alembic_version``,
so an app may keep its own Alembic history in the same database.

A database whose tables were made by ``create_all`` before migrations existed is adopted: the
baseline revision keeps the tables it finds and creates only the missing ones (see
:mod:`ringfence.store.migrations.adopt`), then the version is recorded.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, MetaData, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

logger = logging.getLogger("ringfence.store")

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "ringfence_alembic_version"
TABLE_PREFIX = "ringfence_"
# Every module that defines an ``InternalModel`` table. A table in a module missing here fails
# tests/store/test_migrations.py, as does a model changed without a migration.
MODEL_MODULES = ("ringfence.authserver.models", "ringfence.guards.confirmation", "ringfence.audit.models")
# PostgreSQL advisory lock held while migrating: the first 8 bytes of SHA-256 of the name, so it
# does not collide with an app's own advisory locks by accident.
MIGRATION_LOCK_KEY = int.from_bytes(hashlib.sha256(b"ringfence_migrations").digest()[:8], "big", signed=True)


class SchemaError(RuntimeError):
    """The database's schema cannot be brought to what this version of ringfence needs."""


def internal_metadata() -> MetaData:
    """The ``MetaData`` of every ringfence table, as the models declare them."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
    from ringfence.store.database import InternalModel

    return InternalModel.metadata


def include_name(name: str | None, type_: str, _parents: dict[str, Any]) -> bool:
    """Only ringfence's tables take part in comparisons: the app's tables are the app's business."""
    if type_ == "table":
        return bool(name) and name.startswith(TABLE_PREFIX) and name != VERSION_TABLE
    return True


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for ringfence's migrations, bound to ``connection`` when given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "ringfence ships at least one migration"
    return head


async def upgrade(engine: AsyncEngine) -> None:
    """Bring ringfence's tables to the newest revision, one process at a time."""
    async with engine.begin() as connection:
        await schema_lock(connection)
        await connection.run_sync(_upgrade)


async def schema_lock(connection: AsyncConnection) -> None:
    """Take, for this transaction, the lock that lets one process at a time change the schema."""
    if connection.dialect.name == "sqlite":
        await connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        await connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))


def _upgrade(connection: Connection) -> None:
    tables = inspect(connection).get_table_names()
    if VERSION_TABLE not in tables and any(name.startswith(TABLE_PREFIX) for name in tables):
        logger.info("adopting ringfence tables made before migrations; missing ones are created")
    try:
        command.upgrade(alembic_config(connection), "head")
    except CommandError as exc:
        raise SchemaError(_unknown_revision(connection, exc)) from None


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision recorded in the database, or ``None`` if ringfence has never migrated it."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()


async def differences(engine: AsyncEngine) -> list[str]:
    """How the database's ringfence tables differ from the models (empty: they match), one line each."""
    async with engine.connect() as connection:
        return await connection.run_sync(_differences)


def _differences(connection: Connection) -> list[str]:
    context = MigrationContext.configure(connection, opts={
        "version_table": VERSION_TABLE, "include_name": include_name, "compare_type": True,
    })  # fmt: skip
    return [_describe(diff) for diff in compare_metadata(context, internal_metadata())]


def _describe(diff: Any) -> str:
    # compare_metadata yields tuples such as ("add_table", Table) or lists of ("modify_type", ...).
    if isinstance(diff, list):
        return "; ".join(_describe(item) for item in diff)
    action, *details = diff
    names = [getattr(item, "name", None) or str(item) for item in details if item is not None]
    return f"{action} {' '.join(str(name) for name in names)}".strip()


def _unknown_revision(connection: Connection, exc: CommandError) -> str:
    revision = _current(connection)
    return (f"the database's ringfence schema is at revision {revision!r}, which this version of ringfence "
            f"does not know (it knows up to {head_revision()!r}): upgrade ringfence, or restore a backup "
            f"({exc})")
