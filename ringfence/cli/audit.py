"""The ``ringfence audit`` commands: ``verify``, ``show`` and ``checkpoint``.

Plain functions with Typer annotations; ``ringfence.cli`` registers them on an ``audit`` group.
They read the same settings as ``ringfence serve`` (``--data-dir``, ``--database-url`` and their
``RINGFENCE_*`` variables): the database holds the records, the data folder the checkpoint key.

None of them creates anything: run where there is no ringfence data, they refuse (exit 2).

Exit codes:
  verify      0 intact; 1 damaged (one line names the first bad record and the damage);
              2 the log could not be checked (no audit log there, no checkpoint key, bad options).
  show        0 done; 2 the log could not be read or bad options.
  checkpoint  0 signed (or the log is empty); 2 the log could not be written (or no checkpoint key).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from ringfence.cli.options import DatabaseOption, DataDirOption
from ringfence.cli.options import fail as _fail

if TYPE_CHECKING:
    from ringfence.audit.log import AuditLog

T = TypeVar("T")

def _with_log(data_dir: Path | None, database_url: str | None, action: Callable[[AuditLog], Awaitable[T]]) -> T:
    """Run ``action`` on the configured audit log; any reason it cannot run becomes one line and exit 2."""
    from sqlalchemy.exc import SQLAlchemyError

    from ringfence.audit.errors import AuditError
    from ringfence.audit.log import AuditLog
    from ringfence.audit.verification import has_audit_tables
    from ringfence.config import ConfigError, Settings
    from ringfence.store.database import Database
    from ringfence.store.existing import require_database

    async def run() -> T:
        settings = Settings.load(data_dir=data_dir, database_url=database_url)
        database = Database(settings.resolved_database_url)
        try:
            await require_database(database, settings.data_dir, settings.database_url)
            if not await has_audit_tables(database):
                raise AuditError("there is no audit log in this database (check --database-url)")
            return await action(AuditLog(database, settings.data_dir))
        finally:
            await database.close()

    try:
        return asyncio.run(run())
    except (ConfigError, AuditError) as exc:
        _fail(str(exc))
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        _fail(f"cannot read the audit log: {reason}")


def _parse_time(option: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)  # a time without an offset is taken as UTC
    except ValueError:
        _fail(f"{option} {value!r} is not an ISO 8601 time (e.g. 2025-06-01T12:00:00Z)")


def verify(data_dir: DataDirOption = None, database_url: DatabaseOption = None) -> None:
    """Check the audit log's hash chain and signed checkpoints; exit 1 naming the first bad record."""
    report = _with_log(data_dir, database_url, lambda log: log.verify())
    typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)


def show(
    since: Annotated[str | None, typer.Option(help="From this ISO 8601 time on (UTC if no offset).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this ISO 8601 time (UTC if no offset).")] = None,
    principal: Annotated[str | None, typer.Option(help="Only this principal.")] = None,
    tool: Annotated[str | None, typer.Option(help="Only this tool.")] = None,
    outcome: Annotated[str | None, typer.Option(help="Only this outcome.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only this event kind, e.g. tool.call.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many records.")] = None,
    newest_first: Annotated[bool, typer.Option("--newest-first", help="Newest records first.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Print audit records as JSON lines, oldest first; filters combine."""
    since_time, until_time = _parse_time("--since", since), _parse_time("--until", until)

    async def print_records(log: AuditLog) -> None:
        async for record in log.query(since=since_time, until=until_time, principal=principal, tool=tool,
                                      outcome=outcome, kind=kind, limit=limit, newest_first=newest_first):  # fmt: skip
            typer.echo(json.dumps(record.as_json(), ensure_ascii=False, separators=(",", ":")))

    _with_log(data_dir, database_url, print_records)


def checkpoint(data_dir: DataDirOption = None, database_url: DatabaseOption = None) -> None:
    """Sign the newest record now (servers also do it every few records or seconds)."""
    signed = _with_log(data_dir, database_url, lambda log: log.checkpoint())
    typer.echo("the audit log is empty" if signed is None else f"signed checkpoint at #{signed.seq}")
