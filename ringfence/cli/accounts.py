"""``ringfence users`` and ``ringfence keys``: the embedded authorization server's accounts and signing keys.

Only ``users add`` may create a deployment's database (an account made before the first start);
the others refuse, creating nothing, where there is no ringfence data.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ringfence.cli.options import DatabaseOption, DataDirOption, fail

if TYPE_CHECKING:  # the runtime is imported by the commands that run, so `--help` starts at once
    from ringfence.authserver.keys import KeyRing
    from ringfence.config import Settings
    from ringfence.store.database import Database

users_cli = typer.Typer(help="Manage the embedded authorization server's sign-in accounts. (`ringfence user` "
                             "deletes or exports everything held about one person.)", no_args_is_help=True,
                        rich_markup_mode=None)
keys_cli = typer.Typer(help="Manage the embedded authorization server's signing keys.", no_args_is_help=True,
                       rich_markup_mode=None)


OPERATOR = "(operator)"  # the audit principal of what is done on the command line
PasswordStdinOption = Annotated[bool, typer.Option(help="Read the password from standard input.")]


def _with_users(data_dir: Path | None, database_url: str | None, action, *,  # type: ignore[no-untyped-def]
                create: bool = False) -> object:
    """Run ``action(UserStore)`` against the configured database (which must exist unless ``create``);
    errors become one line."""
    from ringfence.authserver.users import UserError, UserStore
    from ringfence.config import ConfigError, Settings
    from ringfence.store.database import Database
    from ringfence.store.existing import require_database

    async def run() -> object:
        settings = Settings.load(data_dir=data_dir, database_url=database_url)
        database = Database(settings.resolved_database_url)
        try:
            if not create:
                await require_database(database, settings.data_dir, settings.database_url)
            await database.start()
            return await action(UserStore(database))
        finally:
            await database.close()

    try:
        return asyncio.run(run())
    except (ConfigError, UserError) as exc:
        fail(str(exc))


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_cli.command("add")
def users_add(
    username: str,
    password_stdin: PasswordStdinOption = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Add a user who can sign in and grant apps access."""
    password = _read_password(password_stdin)
    _with_users(data_dir, database_url, lambda users: users.add(username, password), create=True)
    typer.echo(f"added user {username}")


@users_cli.command("list")
def users_list(data_dir: DataDirOption = None, database_url: DatabaseOption = None) -> None:
    """List the users."""
    for user in _with_users(data_dir, database_url, lambda users: users.list()):  # type: ignore[union-attr]
        typer.echo(user.username)


@users_cli.command("remove")
def users_remove(username: str, data_dir: DataDirOption = None, database_url: DatabaseOption = None) -> None:
    """Remove a sign-in account, with its grants and consents (not the app's records: see `ringfence user delete`)."""
    _with_users(data_dir, database_url, lambda users: users.remove(username))
    typer.echo(f"removed user {username}")
    typer.echo("the app's records and audit details about them are kept; to delete everything held about a "
               "person, use `ringfence user delete TARGET --username NAME` instead", err=True)


@users_cli.command("passwd")
def users_passwd(
    username: str,
    password_stdin: PasswordStdinOption = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Set a user's password."""
    password = _read_password(password_stdin)
    _with_users(data_dir, database_url, lambda users: users.set_password(username, password))
    typer.echo(f"changed the password of {username}")


@keys_cli.command("rotate")
def keys_rotate(data_dir: DataDirOption = None, database_url: DatabaseOption = None) -> None:
    """Sign new tokens with a new key; the old public key stays published until its tokens expire."""
    from ringfence.authserver.keys import KeyRing
    from ringfence.authserver.oauth import ACCESS_TOKEN_SECONDS
    from ringfence.config import ConfigError, Settings
    from ringfence.store.database import Database
    from ringfence.store.existing import in_data_folder

    try:
        settings = Settings.load(data_dir=data_dir, database_url=database_url)
        keys = KeyRing(in_data_folder(settings.data_dir, "keys"), token_lifetime=ACCESS_TOKEN_SECONDS)
        database = Database(settings.resolved_database_url)
    except ConfigError as exc:
        fail(str(exc))
    try:
        kid, unrecorded = asyncio.run(_rotate_and_audit(keys, database, settings))
    except ConfigError as exc:  # no database there: nothing was rotated
        fail(str(exc))
    except Exception as exc:  # the database could not be read, or the key not written
        fail(f"nothing was rotated ({type(exc).__name__}); check --data-dir and --database-url")
    if unrecorded is not None:  # the rotation stands; the operator must know it went unrecorded
        fail(f"rotated to key {kid}, but could not record it in the audit log ({type(unrecorded).__name__})")
    typer.echo(f"new signing key {kid}; running servers that share this data folder sign with it at once")


async def _rotate_and_audit(keys: KeyRing, database: Database, settings: Settings) -> tuple[str, Exception | None]:
    """Rotate once the servers' audit log is known to be there (never guessed), then record it;
    the new key id, and why it could not be recorded (``None``: recorded)."""
    from ringfence.audit.log import AuditLog
    from ringfence.audit.records import EventKind
    from ringfence.store.existing import require_database

    try:
        await require_database(database, settings.data_dir, settings.database_url)
        kid = keys.rotate().kid
        try:
            await database.start()
            await AuditLog(database, settings.data_dir).append(EventKind.KEY_ROTATED, principal=OPERATOR,
                                                               outcome="rotated", payload={"kid": kid})
        except Exception as exc:
            return kid, exc
        return kid, None
    finally:
        await database.close()
