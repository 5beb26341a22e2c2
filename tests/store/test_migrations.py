"""ringfence's own tables are made by Alembic migrations, on SQLite and PostgreSQL alike.

- The migrations produce exactly the schema the models declare (Alembic's ``compare_metadata``
  finds no difference): a model changed without a migration fails here.
- Databases made by ``create_all`` before migrations existed are adopted, their rows kept.
- Several processes upgrading one empty database at once make one schema and one version row.
- ``ringfence db upgrade|current|check`` report where a database stands; bad input gets one line.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import inspect, text

import ringfence
from ringfence.store import schema
from ringfence.store.database import Database, InternalModel
from tests.conftest import POSTGRES_ADMIN_URL
from tests.support.cli import run_ringfence_many
from tests.support.oauth import ringfence_cli

HEAD = schema.head_revision()


def import_every_ringfence_module() -> None:
    """So that a table declared in a module missing from ``schema.MODEL_MODULES`` is seen too."""
    for module in pkgutil.walk_packages(ringfence.__path__, "ringfence."):
        if module.name.startswith("ringfence.store.migrations") or module.name.endswith("__main__"):
            continue  # Alembic's scripts, and modules that run a program when imported
        importlib.import_module(module.name)


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind, new for each test."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'ringfence.db'}"
        return
    name = f"ringfence_migrations_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    yield f"{base}/{name}"
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _start(url: str) -> Database:
    database = Database(url)
    await database.start()
    return database


async def _tables(database: Database) -> set[str]:
    async with database.engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


async def _rows(database: Database, sql: str) -> list[tuple]:
    async with database.engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(sql))]


async def _sql(database: Database, *statements: str) -> None:
    async with database.engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


# The migrations are the models --------------------------------------------------------------------


def test_every_table_module_is_listed_for_migrations() -> None:
    """A module declaring ``InternalModel`` tables must be in ``schema.MODEL_MODULES``, or autogenerate misses it."""
    import_every_ringfence_module()
    declared = {mapper.class_.__module__ for mapper in InternalModel.registry.mappers}
    missing = sorted(declared - set(schema.MODEL_MODULES))
    assert missing == [], f"add to MODEL_MODULES: {missing}"


def test_migrations_produce_exactly_the_models_schema(database_url: str) -> None:
    """Upgraded from empty, the database matches every model: no table, column, type, index or key differs.

    This fails when a model is changed without a migration (``python -m ringfence.store.migrations``)."""
    import_every_ringfence_module()

    async def check() -> tuple[list[str], str | None, set[str]]:
        database = await _start(database_url)
        try:
            return (await schema.differences(database.engine), await schema.current_revision(database.engine),
                    await _tables(database))
        finally:
            await database.close()

    found, revision, tables = run(check())
    assert found == []
    assert revision == HEAD
    assert {name for name in tables if name.startswith("ringfence_")} == {*InternalModel.metadata.tables,
                                                                           schema.VERSION_TABLE}


def test_migration_records_its_version_apart_from_an_apps_own_alembic(database_url: str) -> None:
    """An app's ``alembic_version`` table is left alone: ringfence records its own in ``ringfence_alembic_version``."""

    async def check() -> tuple[list[tuple], list[tuple]]:
        database = Database(database_url)
        await database.upgrade_schema()  # creates the SQLite folder
        await _sql(database, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)",
                   "INSERT INTO alembic_version VALUES ('the_apps_own')")
        await database.close()
        database = await _start(database_url)
        try:
            return (await _rows(database, "SELECT version_num FROM alembic_version"),
                    await _rows(database, "SELECT version_num FROM ringfence_alembic_version"))
        finally:
            await database.close()

    apps, ringfences = run(check())
    assert apps == [("the_apps_own",)]
    assert ringfences == [(HEAD,)]


# Adopting databases made before migrations ---------------------------------------------------------


async def _legacy_database(url: str, *, without: tuple[str, ...] = ()) -> None:
    """A database as ringfence made it before migrations: ``create_all``, no version table, one user."""
    schema.internal_metadata()
    database = Database(url)
    if database.url.database and database.url.get_backend_name() == "sqlite":
        Path(database.url.database).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tables = [table for name, table in InternalModel.metadata.tables.items() if name not in without]
    async with database.engine.begin() as connection:
        await connection.run_sync(lambda sync: InternalModel.metadata.create_all(sync, tables=tables))
        await connection.execute(text("INSERT INTO ringfence_users (id, subject, username, password_hash, "
                                      "created_at) VALUES (1, 'sub-1', 'kept', 'hash', 0)"))
    await database.close()


@pytest.mark.parametrize("missing", [(), ("ringfence_audit", "ringfence_audit_head", "ringfence_audit_checkpoints")],
                         ids=["complete", "without-audit-tables"])
def test_database_made_before_migrations_is_adopted_with_its_rows(database_url: str, missing: tuple[str, ...]) -> None:
    """Existing tables are kept with their rows, missing ones (the audit log's were made lazily) created,
    and the version recorded; afterwards the schema matches the models exactly."""

    async def check() -> tuple[list[tuple], str | None, list[str]]:
        await _legacy_database(database_url, without=missing)
        database = await _start(database_url)
        try:
            return (await _rows(database, "SELECT username FROM ringfence_users"),
                    await schema.current_revision(database.engine), await schema.differences(database.engine))
        finally:
            await database.close()

    users, revision, found = run(check())
    assert users == [("kept",)]
    assert revision == HEAD
    assert found == []


# Several processes at once --------------------------------------------------------------------------


def test_processes_upgrading_one_empty_database_at_once_make_one_schema(database_url: str, tmp_path: Path) -> None:
    """Four ``ringfence db upgrade`` at once: the lock (advisory lock / BEGIN IMMEDIATE) lets one migrate;
    the others wait, find the schema at head, and succeed without touching it."""
    if database_url.startswith("sqlite"):
        Path(database_url.removeprefix("sqlite+aiosqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    args = ["db", "upgrade", "--database-url", database_url]
    outcomes = run_ringfence_many({f"upgrade{n}": (args, {}) for n in range(4)}, tmp_path, deadline=60)
    assert [outcome.returncode for outcome in outcomes.values()] == [0] * 4, outcomes
    assert all(f"at revision {HEAD} (head)" in outcome.stdout for outcome in outcomes.values())

    async def versions() -> tuple[list[tuple], list[str]]:
        database = Database(database_url)
        try:
            return (await _rows(database, "SELECT version_num FROM ringfence_alembic_version"),
                    await schema.differences(database.engine))
        finally:
            await database.close()

    rows, found = run(versions())
    assert rows == [(HEAD,)]
    assert found == []


# The operator's commands ----------------------------------------------------------------------------


def test_db_current_and_check_on_a_database_at_head(database_url: str) -> None:
    """After ``db upgrade``: ``current`` names the head, ``check`` exits 0."""
    upgraded = ringfence_cli("db", "upgrade", "--database-url", database_url)
    assert upgraded.returncode == 0, upgraded.stderr
    current = ringfence_cli("db", "current", "--database-url", database_url)
    assert current.returncode == 0, current.stderr
    assert current.stdout.strip() == f"ringfence tables at revision {HEAD} (head)"
    checked = ringfence_cli("db", "check", "--database-url", database_url)
    assert checked.returncode == 0, checked.stderr
    assert "match this version's models" in checked.stdout


def test_db_check_exits_1_and_names_a_table_changed_outside_the_migrations(database_url: str) -> None:
    """An index dropped and a column added by hand: ``check`` lists both and exits 1."""

    async def drift() -> None:
        database = await _start(database_url)
        try:
            await _sql(database, "DROP INDEX ix_ringfence_refresh_family",
                       "ALTER TABLE ringfence_users ADD COLUMN nickname VARCHAR(20)")
        finally:
            await database.close()

    run(drift())
    checked = ringfence_cli("db", "check", "--database-url", database_url)
    assert checked.returncode == 1
    assert "remove_column" in checked.stderr and "nickname" in checked.stderr
    assert "add_index ix_ringfence_refresh_family" in checked.stderr


def test_db_current_and_check_of_a_never_migrated_database_say_upgrade(database_url: str) -> None:
    """A database ringfence never migrated: ``current`` says so, ``check`` exits 1 and says what to run."""

    async def empty() -> None:
        database = Database(database_url)
        if database.url.database and database.url.get_backend_name() == "sqlite":
            Path(database.url.database).parent.mkdir(parents=True, exist_ok=True)
        await _sql(database, "CREATE TABLE apps_own (id INTEGER PRIMARY KEY)")
        await database.close()

    run(empty())
    current = ringfence_cli("db", "current", "--database-url", database_url)
    assert current.returncode == 0
    assert "at revision none" in current.stdout and "ringfence db upgrade" in current.stdout
    checked = ringfence_cli("db", "check", "--database-url", database_url)
    assert checked.returncode == 1
    assert "run `ringfence db upgrade`" in checked.stderr


def test_database_at_an_unknown_newer_revision_is_refused_not_touched(database_url: str) -> None:
    """Fail closed: after a downgrade of ringfence, the newer schema is not guessed at; one line says why."""

    async def newer() -> None:
        database = await _start(database_url)
        try:
            await _sql(database, "UPDATE ringfence_alembic_version SET version_num = '9999'")
        finally:
            await database.close()

    run(newer())
    upgraded = ringfence_cli("db", "upgrade", "--database-url", database_url)
    assert upgraded.returncode == 2
    assert upgraded.stderr.startswith("ringfence: error: the database's ringfence schema is at revision '9999'")
    assert "Traceback" not in upgraded.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--database-url", "mysql://db.example/x"], "database driver 'mysql' is not supported"),
    (["--database-url", "postgresql+asyncpg://nobody@127.0.0.1:1/x"], "cannot use the database"),
    (["--database-url", "not a url"], "not a valid SQLAlchemy URL"),
])
def test_db_commands_refuse_bad_databases_with_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    """Bad input: exit 2 and ``ringfence: error: ...``, never a traceback."""
    runs = {command: (["db", command, *args], {}) for command in ("upgrade", "current", "check")}
    outcomes = run_ringfence_many(runs, tmp_path)
    for command, outcome in outcomes.items():
        assert outcome.returncode == 2, (command, outcome.stderr)
        assert outcome.stderr.startswith("ringfence: error: ") and message in outcome.stderr
        assert "Traceback" not in outcome.stderr


def test_db_current_refuses_a_missing_sqlite_file_without_creating_it(tmp_path: Path) -> None:
    """Reading commands do not create an empty database where the operator mistyped a folder."""
    done = ringfence_cli("db", "current", "--data-dir", str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert f"no ringfence data in {tmp_path / 'nowhere'}" in done.stderr
    assert not (tmp_path / "nowhere" / "ringfence.db").exists()
