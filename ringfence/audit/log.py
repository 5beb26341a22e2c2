"""The audit log: append records to one hash chain, erase payloads, verify, query.

Every record names the hash of the one before it (``prev_hash``) and its own hash covers that, so
changing, deleting or reordering a record breaks the chain at that record. Appends from any
number of tasks and processes are serialized on the database, so there is exactly one chain with
gap-free sequence numbers:

- PostgreSQL: the one row of ``ringfence_audit_head`` is locked (``SELECT … FOR UPDATE``) for the
  length of the append's transaction; the next appender waits for the commit, then reads the new
  head (READ COMMITTED re-reads a row it waited for).
- SQLite: the transaction starts with ``BEGIN IMMEDIATE``, which takes the database's write lock
  before the head is read. (Python's sqlite3 would otherwise begin only at the first INSERT, after
  the read, and two processes could read the same head.)

Within a process an ``asyncio.Lock`` also queues appends, so waiting tasks do not each hold a
connection, and on SQLite do not sleep in the busy handler. Appends that wait for it are
committed together (group commit): the task that gets the lock writes every record waiting by
then in one transaction, so under load a transaction carries many records, not one.

Appends are the one hot path (every tool call waits for its record), so they skip SQLAlchemy's
statement machinery and talk to the driver:

- SQLite: the transaction runs on the database's own connection for appends
  (``Database.sqlite_connection``, outside the pool), on the event loop itself when that
  connection and the write lock are free (it is a few tens of microseconds of local I/O, less than
  a hand-off to a worker thread); when another thread has the connection or another connection
  holds the lock, and every ``WAL_CHECKPOINT_EVERY`` commits (a checkpoint syncs the file to
  disk), it runs in a worker thread instead, which may wait.
- PostgreSQL: the log keeps a connection of its own and remembers the head it last wrote. The
  append is one statement that moves the head only if it is still the one remembered (waiting for
  its row lock like ``FOR UPDATE``) and inserts the records only if it moved; when another
  process moved the head in between, nothing is written and the append runs as a transaction
  that reads the head ``FOR UPDATE`` first.

Signed checkpoints are never made on an append: :meth:`AuditLog.checkpoint` signs the newest
committed record without taking the chain lock, and the server runs it in the background
(:mod:`.schedule`), so no call waits for a signature.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
import asyncpg
from sqlalchemy import func, insert, null, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError
from sqlalchemy.ext.asyncio import AsyncConnection

from ringfence.audit.checkpoints import Checkpoint, CheckpointFile, CheckpointKey
from ringfence.audit.correlation import Correlation, current_correlation, session_hash
from ringfence.audit.errors import AuditError
from ringfence.audit.models import AuditCheckpoint, AuditHead, AuditRecord
from ringfence.audit.records import (
    GENESIS_HASH,
    EventKind,
    check_correlation,
    check_fields,
    format_time,
    normalize_latency,
    now,
    prepare_payload,
    record_hash,
)
from ringfence.audit.verification import (
    CHECKPOINT_COLUMNS,
    RECORD_COLUMNS,
    VerifyReport,
    has_audit_tables,
    verify_chain,
)
from ringfence.store.database import Database
from ringfence.store.pseudonyms import pseudonym_key

logger = logging.getLogger("ringfence.audit")

QUERY_BATCH_SIZE = 500
# How long an append waits for the chain lock before it fails, rather than hang a request.
# (SQLite's own busy timeout, from Python's sqlite3, is the same 5 seconds.)
LOCK_TIMEOUT_MS = 5000
# SQLite: this log's connections never checkpoint the write-ahead log on commit (an fsync must not
# block the event loop); every this many commits, the commit and a checkpoint run in a worker thread.
# About 4 pages a commit, so about SQLite's own 1000-page interval.
WAL_CHECKPOINT_EVERY = 250
# PostgreSQL advisory lock taken while the head row is created: the first 8 bytes of
# SHA-256("ringfence_audit"), so it does not collide with an app's own advisory locks by accident.
SCHEMA_LOCK_KEY = int.from_bytes(hashlib.sha256(b"ringfence_audit").digest()[:8], "big", signed=True)


# The chain head, locked for the transaction (SQLite has no FOR UPDATE: BEGIN IMMEDIATE locks instead).
HEAD = select(AuditHead.seq, AuditHead.record_hash).where(AuditHead.id == 1).with_for_update()

# The appends' own SQL, for the drivers directly: a record's columns in STORED_FIELDS order, its
# payload stored as its canonical JSON text.
STORED_FIELDS = ("seq", "ts", "kind", "principal", "tool", "outcome", "latency_ms", "payload", "payload_salt",
                 "payload_hash", "prev_hash", "record_hash", "request_id", "session_hash")  # fmt: skip

SQLITE_HEAD = "SELECT seq, record_hash FROM ringfence_audit_head WHERE id = 1"
SQLITE_INSERT = """
    INSERT INTO ringfence_audit (seq, ts, kind, principal, tool, outcome, latency_ms, payload, payload_salt,
                                 payload_hash, prev_hash, record_hash, request_id, session_hash)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
SQLITE_MOVE_HEAD = "UPDATE ringfence_audit_head SET seq = ?, record_hash = ? WHERE id = 1"

POSTGRES_HEAD = "SELECT seq, record_hash FROM ringfence_audit_head WHERE id = 1 FOR UPDATE"
# Moves the head from ($1, $2) to the last record ($3, $4) and inserts the records (one array per
# column), or, if the head is no longer ($1, $2), does nothing. The UPDATE waits for the head's row
# lock like FOR UPDATE, then checks the row as committed.
POSTGRES_APPEND = """
    WITH moved AS (
        UPDATE ringfence_audit_head SET seq = $3, record_hash = $4
        WHERE id = 1 AND seq = $1 AND record_hash = $2
        RETURNING id
    )
    INSERT INTO ringfence_audit (seq, ts, kind, principal, tool, outcome, latency_ms, payload, payload_salt,
                                 payload_hash, prev_hash, record_hash, request_id, session_hash)
    SELECT r.seq, r.ts, r.kind, r.principal, r.tool, r.outcome, r.latency_ms, r.payload::json, r.payload_salt,
           r.payload_hash, r.prev_hash, r.record_hash, r.request_id, r.session_hash
    FROM moved, unnest($5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::float8[],
                       $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[])
        AS r(seq, ts, kind, principal, tool, outcome, latency_ms, payload, payload_salt, payload_hash, prev_hash,
             record_hash, request_id, session_hash)
"""
# The appending connection's session: waits for the head no longer than other appends, and reads
# the head as of each statement (READ COMMITTED) whatever the server's default.
POSTGRES_SESSION = {"lock_timeout": f"{LOCK_TIMEOUT_MS}ms", "default_transaction_isolation": "read committed"}


@dataclass
class PendingRecord:
    """A record waiting for its group commit: its fields, its payload's stored text, and the future
    that gets it once committed."""

    fields: dict[str, Any]
    payload_text: str | None
    written: asyncio.Future[AuditRecord]


# The rows of a batch as written (payloads as objects).
Added = list[dict[str, Any]]


@dataclass
class ChainHead:
    """The last record's sequence number and hash, as read under the chain lock."""

    seq: int
    record_hash: str


class AuditLog:
    """A tamper-evident, append-only log of security events in ``database``.

    ``append`` returns only once its record is committed, so a request may be acknowledged as
    soon as it returns. :meth:`checkpoint` signs the newest record with the key in ``data_dir``,
    which also holds a copy of the checkpoints. ``committed``, if set, is called on the event
    loop with the newest sequence number after each commit of appends (the checkpoint schedule
    counts records with it).

    One event loop at a time: the log follows a new loop once the previous one is done (each test
    runs its own), but two loops appending at once (in two threads) would share one group commit
    without a common lock. ``ringfence serve`` runs a single loop.
    """

    def __init__(self, database: Database, data_dir: Path) -> None:
        self.database = database
        self.data_dir = data_dir
        self.committed: Callable[[int], None] | None = None
        self._checkpoint_file = CheckpointFile(data_dir)
        self._sqlite = database.url.get_backend_name() == "sqlite"
        self._key: CheckpointKey | None = None
        self._ready = False
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[PendingRecord] = []
        self._sqlite_commits = 0  # since the last checkpoint of the write-ahead log
        self._postgres: asyncpg.Connection | None = None  # of this event loop
        self._postgres_head: ChainHead | None = None  # as this process last wrote it
        self._session_key: bytes | None = None  # made on the first record of a host session

    # Writing --------------------------------------------------------------------------------

    async def append(
        self,
        kind: EventKind | str,
        *,
        principal: str,
        tool: str | None = None,
        outcome: str,
        latency_ms: float | None = None,
        payload: Any = None,
        correlation: Correlation | None = None,
    ) -> AuditRecord:
        """Add one record at the end of the chain and commit it before returning.

        ``payload`` must be a JSON object, already redacted; it is stored as it reads back (tuples
        as lists). The record carries the request id and the hashed host session id of
        ``correlation``, by default the request in progress (audit/correlation.py). Raises
        ``ValueError`` or ``TypeError`` for a field the log cannot store faithfully.
        """
        kind = str(kind)
        check_fields(kind, principal, tool, outcome)
        correlated = self._correlation_fields(correlation)
        stored_payload, payload_text, salt, digest = prepare_payload(payload)
        pending = PendingRecord(
            {"kind": kind, "principal": principal, "tool": tool, "outcome": outcome,
             "latency_ms": normalize_latency(latency_ms), "payload": stored_payload, "payload_salt": salt,
             "payload_hash": digest, **correlated},
            payload_text, asyncio.get_running_loop().create_future(),
        )
        self._waiting().append(pending)
        # Group commit: whoever holds the lock writes every record waiting by then, in one
        # transaction; an appender whose record a previous holder wrote just returns it.
        async with self._process_lock():
            if not pending.written.done():
                batch, self._pending = self._pending, []
                if not self._written_now(batch):
                    # Its own task, shielded: cancelling this appender (a client cancelling its
                    # call) must not abort a transaction that carries other callers' records.
                    writer = asyncio.ensure_future(self._write(batch))
                    try:
                        await asyncio.shield(writer)
                    except asyncio.CancelledError:
                        await asyncio.wait([writer])  # keep the lock until the batch is settled
                        raise
        return pending.written.result()

    def _correlation_fields(self, correlation: Correlation | None) -> dict[str, str | None]:
        """The ``request_id`` and ``session_hash`` columns of a record made in ``correlation``."""
        correlation = correlation or current_correlation()
        digest = None
        if correlation.session_id is not None and correlation.session_source is not None:
            if self._session_key is None:
                self._session_key = pseudonym_key(self.data_dir)
            digest = session_hash(self._session_key, correlation.session_source, correlation.session_id)
        check_correlation(correlation.request_id, digest)
        return {"request_id": correlation.request_id, "session_hash": digest}

    def _written_now(self, batch: list[PendingRecord]) -> bool:
        """SQLite: write ``batch`` on this thread if the write lock is free (there is no await, so
        nothing to cancel); ``False`` when it must go to a worker thread instead."""
        if not self._sqlite or not self._ready or self._sqlite_commits >= WAL_CHECKPOINT_EVERY:
            return False
        try:
            written = self._append_sqlite(batch)
            if written is None:  # another thread is appending: wait for it there
                return False
            outcome: Added | Exception = written
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:  # another connection is writing: wait there
                return False
            outcome = exc
        except Exception as exc:
            outcome = exc
        self._settle(batch, outcome)
        return True

    async def _write(self, batch: list[PendingRecord]) -> None:
        """Append ``batch`` in one transaction, then resolve each record's future (or fail them all)."""
        try:
            await self._ensure_ready()
            if self._sqlite:
                written = await anyio.to_thread.run_sync(lambda: self._append_sqlite(batch, wait=True))
                if written is None:  # cannot be: it waited for the connection
                    raise AuditError("the SQLite connection was not available")
                added = written
            else:
                added = await self._append_postgres(batch)
        except Exception as exc:
            self._settle(batch, exc)  # each appender raises it from its own future
            return
        except BaseException:  # the writer was cancelled at shutdown: all learn it
            self._settle(batch, AuditError("the append was cancelled"))
            raise
        self._settle(batch, added)

    def _settle(self, batch: list[PendingRecord], outcome: Added | Exception) -> None:
        """Resolve each record's future with the record written, or all with the batch's error."""
        if isinstance(outcome, Exception):
            error = _as_sqlalchemy_error(outcome)
            for pending in batch:
                if not pending.written.done():
                    pending.written.set_exception(error)
            return
        for pending, values in zip(batch, outcome, strict=True):
            if not pending.written.done():
                pending.written.set_result(AuditRecord.stored(values))
        if self.committed is not None and outcome:
            self.committed(outcome[-1]["seq"])

    async def erase_payloads(self, *, principal: str | None = None, before: datetime | None = None) -> int:
        """Remove the payloads of ``principal``'s records and/or of records older than ``before``.

        Each erased record keeps its payload hash and gets ``erased_at``, so the chain still
        verifies; the erasure itself is appended as an ``audit.erased`` record. Returns how many
        payloads were erased.
        """
        if principal is None and before is None:
            raise ValueError("say whose payloads to erase (principal) or up to when (before)")
        conditions = [AuditRecord.payload.is_not(None)]
        if principal is not None:
            conditions.append(AuditRecord.principal == principal)
        if before is not None:
            conditions.append(AuditRecord.ts < format_time(before))
        async with self._chain_head() as (connection, head):
            if self._sqlite:
                # Overwrite the freed bytes instead of leaving them in free space in the file
                # (this pooled connection keeps the setting, which costs a little write time).
                await connection.exec_driver_sql("PRAGMA secure_delete = ON")
            result = await connection.execute(
                update(AuditRecord).where(*conditions).values(payload=null(), payload_salt=null(), erased_at=now())
            )
            erased = result.rowcount
            if erased:
                stored_payload, _, salt, digest = prepare_payload({
                    "principal": principal, "before": None if before is None else format_time(before),
                    "records": erased,
                })  # fmt: skip
                await self._add_record(
                    connection, head, kind=EventKind.PAYLOADS_ERASED.value, principal="ringfence", tool=None,
                    outcome="ok", latency_ms=None, payload=stored_payload, payload_salt=salt, payload_hash=digest,
                    **self._correlation_fields(None),
                )
        if erased and self._sqlite:
            await self._flush_sqlite_wal()
        return erased

    async def checkpoint(self, *, create_key: bool = False) -> Checkpoint | None:
        """Sign the newest committed record now, so that cutting the log before it is detected.

        Returns the checkpoint (the existing one if the newest record is already signed), or
        ``None`` when the log is empty. The chain lock is not taken: the head row names a
        committed record, so appends go on meanwhile. Raises :class:`AuditError` when the data
        folder has no checkpoint key, unless ``create_key`` (the server's schedule: it makes one).
        """
        await self._ensure_ready()
        key = await self._checkpoint_key(create=create_key)
        async with self.database.engine.connect() as connection:
            head = (await connection.execute(select(AuditHead.seq, AuditHead.record_hash).where(AuditHead.id == 1))
                    ).first()  # fmt: skip
            if head is None or head.seq == 0:
                return None
            existing = (await connection.execute(select(*CHECKPOINT_COLUMNS).where(AuditCheckpoint.seq == head.seq))
                        ).first()  # fmt: skip
        if existing is not None:
            return Checkpoint(*existing)
        checkpoint = key.sign(head.seq, head.record_hash, now())
        try:
            async with self.database.engine.begin() as connection:
                await connection.execute(insert(AuditCheckpoint).values(**checkpoint.as_json()))
        except IntegrityError:  # another process signed the same record just now: theirs stands
            return await self.checkpoint()
        self._copy_checkpoint(checkpoint)
        return checkpoint

    # Reading --------------------------------------------------------------------------------

    async def verify(self) -> VerifyReport:
        """Check the whole chain and the checkpoints; the report names the first bad record.

        Raises :class:`AuditError` if there is no audit log in the database, or there are
        checkpoints but no key in the data folder to check them with.
        """
        key = self._key or CheckpointKey.load(self.data_dir)
        return await verify_chain(self.database, key=key, checkpoint_file=self._checkpoint_file)

    async def query(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        principal: str | None = None,
        tool: str | None = None,
        outcome: str | None = None,
        kind: str | None = None,
        request_id: str | None = None,
        session_hashes: Sequence[str] | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> AsyncIterator[AuditRecord]:
        """Records matching every filter given, in sequence order, streamed in batches.

        ``since`` is inclusive and ``until`` exclusive (naive times are UTC); ``session_hashes``
        matches a record holding any of them (:func:`~ringfence.audit.correlation.session_hashes`).
        A payload that is no longer JSON (a tampered row) is given as its stored text; ``verify`` judges it.
        """
        if not await has_audit_tables(self.database):
            raise AuditError("there is no audit log in this database (check --database-url)")
        conditions = []
        if since is not None:
            conditions.append(AuditRecord.ts >= format_time(since))
        if until is not None:
            conditions.append(AuditRecord.ts < format_time(until))
        for column, value in ((AuditRecord.principal, principal), (AuditRecord.tool, tool),
                              (AuditRecord.outcome, outcome), (AuditRecord.kind, kind),
                              (AuditRecord.request_id, request_id)):  # fmt: skip
            if value is not None:
                conditions.append(column == value)
        if session_hashes is not None:
            conditions.append(AuditRecord.session_hash.in_(list(session_hashes)))
        order = AuditRecord.seq.desc() if newest_first else AuditRecord.seq
        remaining, after = limit, None
        while remaining is None or remaining > 0:
            size = QUERY_BATCH_SIZE if remaining is None else min(QUERY_BATCH_SIZE, remaining)
            statement = select(*RECORD_COLUMNS).where(*conditions).order_by(order).limit(size)
            if after is not None:
                statement = statement.where(AuditRecord.seq < after if newest_first else AuditRecord.seq > after)
            async with self.database.engine.connect() as connection:
                rows = (await connection.execute(statement)).all()
            for row in rows:
                yield _record_from_row(row)
            if len(rows) < size:
                return
            after = rows[-1].seq
            remaining = None if remaining is None else remaining - len(rows)

    # The chain ------------------------------------------------------------------------------

    @asynccontextmanager
    async def _chain_head(self) -> AsyncIterator[tuple[AsyncConnection, ChainHead]]:
        """:meth:`_open_chain` under this process's lock (appends take the lock themselves)."""
        async with self._process_lock(), self._open_chain() as opened:
            yield opened

    @asynccontextmanager
    async def _open_chain(self) -> AsyncIterator[tuple[AsyncConnection, ChainHead]]:
        """A transaction that alone may extend the chain, and the head it extends.

        On exit the head is moved to where the body left it, and everything is committed.
        """
        await self._ensure_ready()
        async with self.database.engine.begin() as connection:
            if self._sqlite:
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                await connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
            row = (await connection.execute(HEAD)).one()
            head = ChainHead(row.seq, row.record_hash)
            yield connection, head
            if head.seq != row.seq:
                await connection.execute(
                    update(AuditHead).where(AuditHead.id == 1).values(seq=head.seq, record_hash=head.record_hash)
                )

    def _next_record(self, head: ChainHead, fields: dict[str, Any]) -> dict[str, Any]:
        """The row of the record after ``head``; moves ``head`` on."""
        seq = head.seq + 1
        ts = now()  # taken under the lock, so timestamps follow sequence order (on one clock)
        digest = record_hash(seq=seq, ts=ts, kind=fields["kind"], principal=fields["principal"], tool=fields["tool"],
                             outcome=fields["outcome"], latency_ms=fields["latency_ms"],
                             payload_hash=fields["payload_hash"], prev_hash=head.record_hash,
                             request_id=fields["request_id"], session_hash=fields["session_hash"])
        values = {"seq": seq, "ts": ts, **fields, "prev_hash": head.record_hash, "record_hash": digest}
        head.seq, head.record_hash = seq, digest
        return values

    async def _add_record(self, connection: AsyncConnection, head: ChainHead, **fields: Any) -> None:
        """Add the next record in the locked transaction."""
        await connection.execute(insert(AuditRecord), self._next_record(head, fields))

    def _chain(self, head: ChainHead, batch: list[PendingRecord]) -> Added:
        """The rows of ``batch`` after ``head``; moves ``head`` to the last one."""
        return [self._next_record(head, pending.fields) for pending in batch]

    def _append_sqlite(self, batch: list[PendingRecord], *, wait: bool = False) -> Added | None:
        """SQLite: the whole group commit, in the calling thread, on the database's own connection.
        Unless ``wait`` (in a worker thread), ``None`` at once if another thread has that connection, and
        ``SQLITE_BUSY`` at once if another connection holds the write lock."""
        with self.database.sqlite_connection(blocking=wait) as connection:
            if connection is None:
                return None
            connection.execute(f"PRAGMA busy_timeout = {LOCK_TIMEOUT_MS if wait else 0}")
            connection.execute("PRAGMA wal_autocheckpoint = 0")  # see WAL_CHECKPOINT_EVERY
            try:
                connection.execute("BEGIN IMMEDIATE")  # the write lock before the head is read
                head = _head(connection.execute(SQLITE_HEAD).fetchone())
                added = self._chain(head, batch)
                connection.executemany(SQLITE_INSERT, _stored_rows(batch, added))
                connection.execute(SQLITE_MOVE_HEAD, (head.seq, head.record_hash))
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
            self._sqlite_commits += 1
            if wait and self._sqlite_commits >= WAL_CHECKPOINT_EVERY:
                self._sqlite_commits = 0
                try:  # the records are committed: a checkpoint that fails is retried later, not reported
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:
                    logger.warning("could not checkpoint the SQLite write-ahead log: %s", exc)
        return added

    async def _append_postgres(self, batch: list[PendingRecord]) -> Added:
        """PostgreSQL: the whole group commit, in one statement when this process wrote the head last."""
        connection = await self._postgres_connection()
        try:
            if self._postgres_head is not None:
                head = dataclasses.replace(self._postgres_head)
                added = self._chain(head, batch)
                if await self._insert_postgres(connection, self._postgres_head, head, batch, added):
                    self._postgres_head = head
                    return added
            async with connection.transaction():
                before = _head(await connection.fetchrow(POSTGRES_HEAD))
                head = dataclasses.replace(before)
                added = self._chain(head, batch)
                if not await self._insert_postgres(connection, before, head, batch, added):
                    raise AuditError("the audit log's chain head moved while it was locked")
        except BaseException:
            self._postgres_head = None  # unknown: read it under the lock next time
            raise
        self._postgres_head = head
        return added

    @staticmethod
    async def _insert_postgres(connection: asyncpg.Connection, before: ChainHead, after: ChainHead,
                               batch: list[PendingRecord], added: Added) -> bool:  # fmt: skip
        """Move the head from ``before`` to ``after`` and insert the rows; ``False`` (nothing
        written) if the head is no longer ``before``."""
        rows = _stored_rows(batch, added)
        status = await connection.execute(POSTGRES_APPEND, before.seq, before.record_hash, after.seq,
                                          after.record_hash, *(list(column) for column in zip(*rows, strict=True)))
        return status == f"INSERT 0 {len(rows)}"

    async def _postgres_connection(self) -> asyncpg.Connection:
        """This log's own connection (appends hold the process lock, so one at a time use it)."""
        if self._postgres is None or self._postgres.is_closed():
            self._postgres_head = None
            self._postgres = await self.database.connect_postgres(**POSTGRES_SESSION)
        return self._postgres

    async def _ensure_ready(self) -> None:
        """Migrate the tables and create the head row, once per instance."""
        if self._ready:
            return
        await self.database.upgrade_schema()
        async with self.database.engine.begin() as connection:
            # One creator at a time, across processes, so that "create if missing" is exact.
            if self._sqlite:
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                await connection.execute(select(func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))
            if (await connection.execute(select(AuditHead.seq).where(AuditHead.id == 1))).first() is None:
                # A log whose head row is gone continues from its last record, not from #1.
                last = (await connection.execute(
                    select(AuditRecord.seq, AuditRecord.record_hash).order_by(AuditRecord.seq.desc()).limit(1)
                )).first()  # fmt: skip
                await connection.execute(insert(AuditHead).values(
                    id=1, seq=last.seq if last else 0, record_hash=last.record_hash if last else GENESIS_HASH,
                ))  # fmt: skip
        self._ready = True

    async def _checkpoint_key(self, *, create: bool) -> CheckpointKey:
        """The data folder's checkpoint key; made there if ``create`` and there is none."""
        if self._key is not None:
            return self._key
        if not create:
            key = CheckpointKey.load(self.data_dir)
            if key is None:
                raise AuditError(f"there is no audit checkpoint key in {self.data_dir} (check --data-dir); "
                                 "a server makes it when it starts")
            self._key = key
            return key
        self._key, created = CheckpointKey.load_or_create(self.data_dir)
        if created:
            async with self.database.engine.connect() as connection:
                checkpoints = (await connection.execute(select(func.count()).select_from(AuditCheckpoint))).scalar()
            if checkpoints:
                logger.warning(
                    "created a new audit checkpoint key in %s although the database holds %d checkpoints; "
                    "they were signed with another key and will not verify (restore the old key file?)",
                    self.data_dir, checkpoints,
                )
        return self._key

    def _copy_checkpoint(self, checkpoint: Checkpoint) -> None:
        # After the commit: a copy must never name a record that was rolled back. The record is
        # already durable, so a failure here is logged rather than reported as a failed append.
        try:
            self._checkpoint_file.append(checkpoint)
        except OSError as exc:
            logger.error("could not copy audit checkpoint #%d to %s: %s", checkpoint.seq,
                         self._checkpoint_file.path, exc)  # fmt: skip

    async def _flush_sqlite_wal(self) -> None:
        # Copy the erased pages into the database file and empty the write-ahead log, which
        # still holds the pages as they were before. Best effort: readers may hold it open.
        async with self.database.engine.connect() as connection:
            await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def _process_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop, self._pending = asyncio.Lock(), loop, []
            self._postgres = None  # a connection belongs to the event loop that opened it
        return self._lock

    def _waiting(self) -> list[PendingRecord]:
        """The records of this event loop waiting to be written."""
        self._process_lock()
        return self._pending


def _as_sqlalchemy_error(exc: Exception) -> Exception:
    """A driver's error as SQLAlchemy's, the form in which callers see every other database error
    (asyncpg's as SQLAlchemy's asyncpg dialect would raise it)."""
    if isinstance(exc, sqlite3.Error):
        return DBAPIError.instance(None, None, exc, sqlite3.Error)
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(None, None, exc)
    if isinstance(exc, asyncpg.InterfaceError):
        return InterfaceError(None, None, exc)
    if isinstance(exc, asyncpg.PostgresError):
        return DBAPIError(None, None, exc)
    return exc  # ours (AuditError), or OSError: the server cannot be reached


def _head(row: Any) -> ChainHead:
    if row is None:  # _ensure_ready creates it; someone deleted it since
        raise AuditError("the audit log's chain head row is missing")
    return ChainHead(*row)


def _stored_rows(batch: list[PendingRecord], added: Added) -> list[tuple[Any, ...]]:
    """Each record's values in ``STORED_FIELDS`` order, the payload as its stored text."""
    return [tuple(pending.payload_text if field == "payload" else values[field] for field in STORED_FIELDS)
            for pending, values in zip(batch, added, strict=True)]


def _record_from_row(row: Any) -> AuditRecord:
    fields = row._asdict()
    if fields["payload"] is not None:
        try:
            fields["payload"] = json.loads(fields["payload"])
        except ValueError:
            pass
    return AuditRecord.stored(fields)
