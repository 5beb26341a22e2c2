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


def _check_correlation(request_id: str | None, session: str | None, session_hash: str | None) -> None:
    """Refuse, in one line, a filter no record could match because of its form."""
    from ringfence.audit.correlation import MAX_HOST_SESSION_LENGTH
    from ringfence.audit.records import REQUEST_ID_PATTERN, SESSION_HASH_DIGITS, SESSION_HASH_PATTERN

    if request_id is not None and not REQUEST_ID_PATTERN.fullmatch(request_id):
        _fail(f"--request-id {request_id!r} is not a request id (1 to 128 letters, digits, '.', '_', ':' or '-', "
              "as in the X-Request-ID header and the log lines)")
    if session is not None and not (0 < len(session) <= MAX_HOST_SESSION_LENGTH and session.isprintable()):
        _fail(f"--session takes a host's session id: 1 to {MAX_HOST_SESSION_LENGTH} printable characters")
    if session_hash is not None and not SESSION_HASH_PATTERN.fullmatch(session_hash):
        _fail(f"--session-hash {session_hash!r} is not a session hash ({SESSION_HASH_DIGITS} lower-case hex digits, "
              "as records show it)")
    if session is not None and session_hash is not None:
        _fail("give --session or --session-hash, not both")


def _session_hashes(data_dir: Path, session: str | None, session_hash: str | None) -> list[str] | None:
    """What the records of the session hold: ``session`` hashed with the data folder's key, or ``session_hash``."""
    from ringfence.audit.correlation import SESSION_KEY_NAME, existing_session_key, session_hashes
    from ringfence.audit.errors import AuditError

    if session_hash is not None:
        return [session_hash]
    if session is None:
        return None
    try:
        key = existing_session_key(data_dir)
    except RuntimeError as damaged:  # a key file shorter than a key: hashing with it would find nothing true
        raise AuditError(str(damaged)) from None
    if key is None:
        raise AuditError(f"there is no {SESSION_KEY_NAME}.key in {data_dir} (check --data-dir): --session is "
                         "hashed with the key the server hashed session ids with")
    return session_hashes(key, session)


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
    request_id: Annotated[str | None, typer.Option(
        help="Only the records of this request: the X-Request-ID its answer and log lines carry.")] = None,
    session: Annotated[str | None, typer.Option(
        help="Only the records of this host session, given as the raw id (ChatGPT's openai/session, else the "
             "Mcp-Session-Id). Records hold only a keyed hash of it: the id is hashed with the data folder's "
             "pseudonym key before the lookup, and is neither stored nor printed.")] = None,
    session_hash: Annotated[str | None, typer.Option(
        help="Only the records with this session_hash (as a record shows it): the rest of that session.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many records.")] = None,
    newest_first: Annotated[bool, typer.Option("--newest-first", help="Newest records first.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Print audit records as JSON lines, oldest first; filters combine."""
    since_time, until_time = _parse_time("--since", since), _parse_time("--until", until)
    _check_correlation(request_id, session, session_hash)

    async def print_records(log: AuditLog) -> None:
        sessions = _session_hashes(log.data_dir, session, session_hash)
        async for record in log.query(since=since_time, until=until_time, principal=principal, tool=tool,
                                      outcome=outcome, kind=kind, request_id=request_id, session_hashes=sessions,
                                      limit=limit, newest_first=newest_first):  # fmt: skip
            typer.echo(json.dumps(record.as_json(), ensure_ascii=False, separators=(",", ":")))

    _with_log(data_dir, database_url, print_records)


def checkpoint(data_dir: DataDirOption = None, database_url: DatabaseOption = None) -> None:
    """Sign the newest record now (servers also do it every few records or seconds)."""
    signed = _with_log(data_dir, database_url, lambda log: log.checkpoint())
    typer.echo("the audit log is empty" if signed is None else f"signed checkpoint at #{signed.seq}")
