"""``ringfence purge``, ``ringfence user delete|export`` and ``ringfence privacy``.

They read the same settings as ``ringfence serve`` (``--data-dir``, ``--database-url`` and the
``RINGFENCE_*`` variables, retention included). ``TARGET`` is the app, whose declared hooks reach
its own records.

Exit codes: 0 done; 1 no data is held about that subject (nothing changed), a purge step failed,
or ``privacy --check`` found the file stale; 2 bad options, an app that cannot be loaded, a
database that cannot be opened, or a deletion that stopped part-way (run it again to finish).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from ringfence.cli.options import DatabaseOption, DataDirOption, fail, load_app_or_fail

if TYPE_CHECKING:  # the runtime is imported by the commands that run, so `--help` starts at once
    from ringfence.app import App
    from ringfence.config import Settings
    from ringfence.personal_data import UnknownSubject
    from ringfence.store.database import Database

T = TypeVar("T")

user_cli = typer.Typer(
    help="Delete or export everything held about one person (the token subject), across ringfence and the "
         "app. (`ringfence users` manages the sign-in accounts.)",
    no_args_is_help=True, rich_markup_mode=None,
)

TargetArgument = Annotated[str, typer.Argument(help="The app: path/to/app.py[:attr] or package.module[:attr].")]
SubjectArgument = Annotated[
    str | None, typer.Argument(help="The person's token subject (`sub`), as tools see it.")]
UsernameOption = Annotated[
    str | None, typer.Option(help="Instead of SUBJECT: a sign-in account of the embedded authorization server.")]


def _load(target: str | None) -> App | None:
    return None if target is None else load_app_or_fail(target)


def _with_database(data_dir: Path | None, database_url: str | None, app: App | None,
                   action: Callable[[Database, Settings], Awaitable[T]]) -> T:
    """Run ``action`` on the configured database, the app served with it; failures become one line."""
    from sqlalchemy.exc import SQLAlchemyError

    from ringfence.config import ConfigError, Settings
    from ringfence.privacy.subjects import SubjectError
    from ringfence.serving import serving
    from ringfence.store.database import Database
    from ringfence.store.existing import require_database
    from ringfence.store.owned import OwnershipError

    async def run() -> T:
        settings = Settings.load(data_dir=data_dir, database_url=database_url)
        database = Database(settings.resolved_database_url)
        try:
            await require_database(database, settings.data_dir, settings.database_url)
            await database.start()
            if app is None:
                return await action(database, settings)
            with serving(app, database):  # the app's personal_data hooks use app.database
                return await action(database, settings)
        finally:
            await database.close()

    try:
        return asyncio.run(run())
    except (ConfigError, SubjectError) as exc:
        fail(str(exc))
    except OwnershipError as exc:
        fail(f"the app's personal-data hook was refused: {exc}")
    except (SQLAlchemyError, OSError) as exc:
        fail(f"cannot use the database ({type(exc).__name__}); check --data-dir and --database-url")


def _subject(database: Database, subject: str | None, username: str | None) -> Awaitable[str]:
    """SUBJECT, or the token subject of the local account ``--username``."""
    from ringfence.authserver.users import UserStore
    from ringfence.personal_data import UnknownSubject

    if (subject is None) == (username is None):
        fail("give either SUBJECT or --username")

    async def resolve() -> str:
        if subject is not None:
            return subject
        found = await UserStore(database).subject_of(username)  # type: ignore[arg-type]
        if found is None:
            raise UnknownSubject(f"there is no local user {username!r}; nothing was changed")
        return found

    return resolve()


def _unknown(exc: UnknownSubject) -> None:
    typer.echo(f"ringfence: {exc}", err=True)
    raise typer.Exit(1)


def purge(
    target: Annotated[str | None, typer.Argument(help="The app, to purge its declared records too.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be removed; change nothing.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Delete everything past its retention period now, and print how much of each kind."""
    from ringfence.privacy.purge import Purge

    app = _load(target)

    async def run(database: Database, settings: Settings):  # type: ignore[no-untyped-def]
        declarations = app.personal_data_declarations if app is not None else None
        return await Purge(database, settings.data_dir, settings, declarations).run(dry_run=dry_run)

    report = _with_database(data_dir, database_url, app, run)
    verb = "would remove" if dry_run else "removed"
    for kind, count in report.counts.items():
        typer.echo(f"{kind}: {verb} {'(not counted)' if count is None else count}")
    for kind in report.failed:
        typer.echo(f"{kind}: FAILED (see the log; the next purge tries again)")
    if report.failed:
        raise typer.Exit(1)


@user_cli.command("delete")
def user_delete(
    target: TargetArgument,
    subject: SubjectArgument = None,
    username: UsernameOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Delete everything held about one person: account, grants, confirmations, app records, audit details."""
    from ringfence.personal_data import DeletionIncomplete, UnknownSubject
    from ringfence.privacy.subjects import SubjectData

    app = _load(target)

    async def run(database: Database, settings: Settings) -> tuple[str, dict[str, int]]:
        data = SubjectData(database, settings.data_dir, app.personal_data_declarations)  # type: ignore[union-attr]
        who = await _subject(database, subject, username)
        try:
            return who, await data.delete(who, channel="cli")
        except DeletionIncomplete as exc:  # every step is safe to repeat; the message names the subject
            fail(f"{exc} ({type(exc.__cause__).__name__})")

    try:
        who, counts = _with_database(data_dir, database_url, app, run)
    except UnknownSubject as exc:
        _unknown(exc)
    typer.echo(f"deleted everything held about subject {who}: "
               + ", ".join(f"{count} {kind}" for kind, count in counts.items()))


@user_cli.command("export")
def user_export(
    target: TargetArgument,
    subject: SubjectArgument = None,
    username: UsernameOption = None,
    output: Annotated[Path | None, typer.Option(help="Write to this new file (mode 0600); default stdout.")] = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Write everything held about one person as JSON (no password hashes, no tokens)."""
    from ringfence.personal_data import UnknownSubject
    from ringfence.privacy.subjects import SubjectData

    app = _load(target)
    if output is not None and output.exists():
        fail(f"{output} exists; give a new file name (an export is never written over another file)")

    async def run(database: Database, settings: Settings) -> dict:
        data = SubjectData(database, settings.data_dir, app.personal_data_declarations)  # type: ignore[union-attr]
        return await data.export(await _subject(database, subject, username))

    try:
        document = _with_database(data_dir, database_url, app, run)
    except UnknownSubject as exc:
        _unknown(exc)
    text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        fail(f"cannot create {output}: {exc.strerror}")
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    typer.echo(f"wrote {output}", err=True)


def privacy(
    target: TargetArgument,
    output: Annotated[Path | None, typer.Option(help="Write the Markdown here; default stdout.")] = None,
    check: Annotated[bool, typer.Option("--check", help="With --output: exit 1 when the file is stale.")] = False,
) -> None:
    """Print a Markdown retention and data-handling disclosure, for the app's privacy policy."""
    from ringfence.config import ConfigError, Settings
    from ringfence.privacy.disclosure import disclosure

    app = _load(target)
    try:
        settings = Settings.load()
    except ConfigError as exc:
        fail(str(exc))
    text = disclosure(app, settings)  # type: ignore[arg-type]
    if check:
        if output is None:
            fail("--check needs --output, the checked-in disclosure to compare with")
        if not output.is_file() or output.read_text(encoding="utf-8") != text:
            typer.echo(f"{output} is stale: run `ringfence privacy {target} --output {output}`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{output} is up to date")
        return
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output}", err=True)
