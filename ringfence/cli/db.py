"""``ringfence db upgrade|current|check``: ringfence's own tables, for operators.

Servers upgrade at start-up anyway; these let an operator migrate before rolling out new
instances, see where a database stands, and check that its tables are what this version expects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from ringfence.cli.options import DatabaseOption, DataDirOption, fail

if TYPE_CHECKING:  # the runtime is imported by the commands that run, so `--help` starts at once
    from ringfence.store.database import Database

T = TypeVar("T")

db_cli = typer.Typer(help="Migrate and check ringfence's own database tables.", no_args_is_help=True,
                     rich_markup_mode=None)


def _with_database(data_dir: Path | None, database_url: str | None, action: Callable[[Database], Awaitable[T]], *,
                   create: bool = False) -> T:
    """Run ``action`` on the configured database; any reason it cannot run becomes one line and exit 2."""
    from sqlalchemy.exc import SQLAlchemyError

    from ringfence.config import ConfigError, Settings
    from ringfence.store import schema
    from ringfence.store.database import Database
    from ringfence.store.existing import require_database

    async def run() -> T:
        settings = Settings.load(data_dir=data_dir, database_url=database_url)
        database = Database(settings.resolved_database_url)
        try:
            if not create:  # the file only: `current` and `check` report on a database never migrated
                await require_database(database, settings.data_dir, settings.database_url, tables=False)
            return await action(database)
        finally:
            await database.close()

    try:
        return asyncio.run(run())
    except (ConfigError, schema.SchemaError) as exc:
        fail(str(exc))
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        fail(f"cannot use the database: {reason}")


@db_cli.command("upgrade")
def upgrade(data_dir: DataDirOption = None, database_url: DatabaseOption = None) -> None:
    """Migrate ringfence's tables to this version's newest revision (safe while servers run)."""
    from ringfence.store import schema

    async def action(database: Database) -> str | None:
        await database.upgrade_schema()
        return await schema.current_revision(database.engine)

    revision = _with_database(data_dir, database_url, action, create=True)
    typer.echo(f"ringfence tables at revision {revision} (head)")


@db_cli.command("current")
def current(data_dir: DataDirOption = None, database_url: DatabaseOption = None) -> None:
    """Show the revision of ringfence's tables and this version's newest."""
    from ringfence.store import schema

    revision = _with_database(data_dir, database_url, lambda database: schema.current_revision(database.engine))
    head = schema.head_revision()
    if revision == head:
        typer.echo(f"ringfence tables at revision {revision} (head)")
    else:
        typer.echo(f"ringfence tables at revision {revision or 'none'}; this version's head is {head}: "
                   "run `ringfence db upgrade` (servers also upgrade when they start)")


@db_cli.command("check")
def check(data_dir: DataDirOption = None, database_url: DatabaseOption = None) -> None:
    """Exit 0 if ringfence's tables are at head and match the models, else list the differences and exit 1."""
    from ringfence.store import schema

    async def action(database: Database) -> tuple[str | None, list[str]]:
        return await schema.current_revision(database.engine), await schema.differences(database.engine)

    revision, found = _with_database(data_dir, database_url, action)
    head = schema.head_revision()
    problems = [] if revision == head else [f"at revision {revision or 'none'}, not {head}: run `ringfence db upgrade`"]
    problems += found
    if problems:
        for problem in problems:
            typer.echo(f"ringfence tables differ: {problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"ringfence tables at revision {head} match this version's models")
