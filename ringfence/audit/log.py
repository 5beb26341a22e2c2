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
pooled connection, and on SQLite do not sleep in the busy handler. Appends that wait for it are
committed together (group commit): the task that gets the lock writes every record waiting by
then in one transaction, so under load a transaction carries many records, not one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
from sqlalchemy import func, insert, null, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ringfence.audit.checkpoints import Checkpoint, CheckpointFile, CheckpointKey
from ringfence.audit.errors import AuditError
from ringfence.audit.models import AuditCheckpoint, AuditHead, AuditRecord
from ringfence.audit.records import (
    GENESIS_HASH,
    EventKind,
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

logger = logging.getLogger("ringfence.audit")

DEFAULT_CHECKPOINT_EVERY = 100
QUERY_BATCH_SIZE = 500
# How long an append waits for the chain lock before it fails, rather than hang a request.
# (SQLite's own busy timeout, from Python's sqlite3, is the same 5 seconds.)
LOCK_TIMEOUT = "5s"
# PostgreSQL advisory lock taken while the head row is created: the first 8 bytes of
# SHA-256("ringfence_audit"), so it does not collide with an app's own advisory locks by accident.
SCHEMA_LOCK_KEY = int.from_bytes(hashlib.sha256(b"ringfence_audit").digest()[:8], "big", signed=True)


# The chain head, locked for the transaction (SQLite has no FOR UPDATE: BEGIN IMMEDIATE locks instead).
HEAD = select(AuditHead.seq, AuditHead.record_hash).where(AuditHead.id == 1).with_for_update()


@dataclass
class PendingRecord:
    """A record waiting for its group commit: its fields, and the future that gets it once committed."""

    fields: dict[str, Any]
    written: asyncio.Future[AuditRecord]


@dataclass
class ChainHead:
    """The last record's sequence number and hash, as read under the chain lock."""

    seq: int
    record_hash: str


class AuditLog:
    """A tamper-evident, append-only log of security events in ``database``.

    ``append`` returns only once its record is committed, so a request may be acknowledged as
    soon as it returns. Every ``checkpoint_every`` records (``None``: only on demand) the newest
    record is signed with the key in ``data_dir``, which also holds a copy of the checkpoints.
    """

    def __init__(self, database: Database, data_dir: Path, *,
                 checkpoint_every: int | None = DEFAULT_CHECKPOINT_EVERY) -> None:  # fmt: skip
        if checkpoint_every is not None and checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1, or None for checkpoints only on demand")
        self.database = database
        self.data_dir = data_dir
        self.checkpoint_every = checkpoint_every
        self._checkpoint_file = CheckpointFile(data_dir)
        self._sqlite = database.url.get_backend_name() == "sqlite"
        self._key: CheckpointKey | None = None
        self._ready = False
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[PendingRecord] = []

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
    ) -> AuditRecord:
        """Add one record at the end of the chain and commit it before returning.

        ``payload`` must be a JSON object, already redacted; it is stored as it reads back (tuples
        as lists). Raises ``ValueError`` or ``TypeError`` for a field the log cannot store faithfully.
        """
        kind = str(kind)
        check_fields(kind, principal, tool, outcome)
        stored_payload, salt, digest = prepare_payload(payload)
        pending = PendingRecord(
            {"kind": kind, "principal": principal, "tool": tool, "outcome": outcome,
             "latency_ms": normalize_latency(latency_ms), "payload": stored_payload, "payload_salt": salt,
             "payload_hash": digest},
            asyncio.get_running_loop().create_future(),
        )
        self._waiting().append(pending)
        # Group commit: whoever holds the lock writes every record waiting by then, in one
        # transaction; an appender whose record a previous holder wrote just returns it.
        async with self._process_lock():
            if not pending.written.done():
                batch, self._pending = self._pending, []
                # Its own task, shielded: cancelling this appender (a client cancelling its call)
                # must not abort a transaction that carries other callers' records.
                writer = asyncio.ensure_future(self._write(batch))
                try:
                    await asyncio.shield(writer)
                except asyncio.CancelledError:
                    await asyncio.wait([writer])  # keep the lock until the batch is settled
                    raise
        return pending.written.result()

    async def _write(self, batch: list[PendingRecord]) -> None:
        """Append ``batch`` in one transaction, then resolve each record's future (or fail them all)."""
        try:
            if self._sqlite:
                await self._ensure_ready()
                added = await anyio.to_thread.run_sync(self._append_sqlite, [pending.fields for pending in batch])
            else:
                async with self._open_chain() as (connection, head):
                    added = [await self._add_record(connection, head, **pending.fields) for pending in batch]
        except BaseException as exc:  # the batch failed (or the writer was cancelled at shutdown): all learn it
            for pending in batch:
                if not pending.written.done():
                    pending.written.set_exception(
                        exc if isinstance(exc, Exception) else AuditError("the append was cancelled")
                    )
            if not isinstance(exc, Exception):
                raise
            return  # each appender raises it from its own future
        for pending, (record, checkpoint) in zip(batch, added, strict=True):
            if checkpoint is not None:
                self._copy_checkpoint(checkpoint)
            pending.written.set_result(record)

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
        checkpoint = None
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
                stored_payload, salt, digest = prepare_payload({
                    "principal": principal, "before": None if before is None else format_time(before),
                    "records": erased,
                })  # fmt: skip
                _, checkpoint = await self._add_record(
                    connection, head, kind=EventKind.PAYLOADS_ERASED.value, principal="ringfence", tool=None,
                    outcome="ok", latency_ms=None, payload=stored_payload, payload_salt=salt, payload_hash=digest,
                )
        if checkpoint is not None:
            self._copy_checkpoint(checkpoint)
        if erased and self._sqlite:
            await self._flush_sqlite_wal()
        return erased

    async def checkpoint(self) -> Checkpoint | None:
        """Sign the newest record now, e.g. on a timer so the unsigned tail stays short.

        Returns the checkpoint (the existing one if the newest record is already signed), or
        ``None`` when the log is empty.
        """
        async with self._chain_head() as (connection, head):
            if head.seq == 0:
                return None
            existing = (await connection.execute(select(*CHECKPOINT_COLUMNS).where(AuditCheckpoint.seq == head.seq))
                        ).first()  # fmt: skip
            if existing is not None:
                return Checkpoint(*existing)
            checkpoint = self._signing_key().sign(head.seq, head.record_hash, now())
            await connection.execute(insert(AuditCheckpoint).values(**checkpoint.as_json()))
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
        limit: int | None = None,
        newest_first: bool = False,
    ) -> AsyncIterator[AuditRecord]:
        """Records matching every filter given, in sequence order, streamed in batches.

        ``since`` is inclusive and ``until`` exclusive (naive times are UTC). A payload that is
        no longer JSON (a tampered row) is given as its stored text; ``verify`` judges it.
        """
        if not await has_audit_tables(self.database):
            raise AuditError("there is no audit log in this database (check --database-url)")
        conditions = []
        if since is not None:
            conditions.append(AuditRecord.ts >= format_time(since))
        if until is not None:
            conditions.append(AuditRecord.ts < format_time(until))
        for column, value in ((AuditRecord.principal, principal), (AuditRecord.tool, tool),
                              (AuditRecord.outcome, outcome), (AuditRecord.kind, kind)):  # fmt: skip
            if value is not None:
                conditions.append(column == value)
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
                await connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            row = (await connection.execute(HEAD)).one()
            head = ChainHead(row.seq, row.record_hash)
            yield connection, head
            if head.seq != row.seq:
                await connection.execute(
                    update(AuditHead).where(AuditHead.id == 1).values(seq=head.seq, record_hash=head.record_hash)
                )

    def _next_record(self, head: ChainHead, fields: dict[str, Any]) -> tuple[dict[str, Any], Checkpoint | None]:
        """The row of the record after ``head`` (and its checkpoint, if one is due); moves ``head`` on."""
        seq = head.seq + 1
        ts = now()  # taken under the lock, so timestamps follow sequence order (on one clock)
        digest = record_hash(seq=seq, ts=ts, kind=fields["kind"], principal=fields["principal"], tool=fields["tool"],
                             outcome=fields["outcome"], latency_ms=fields["latency_ms"],
                             payload_hash=fields["payload_hash"], prev_hash=head.record_hash)
        values = {"seq": seq, "ts": ts, **fields, "prev_hash": head.record_hash, "record_hash": digest}
        head.seq, head.record_hash = seq, digest
        checkpoint = None
        if self.checkpoint_every is not None and seq % self.checkpoint_every == 0:
            checkpoint = self._signing_key().sign(seq, digest, ts)
        return values, checkpoint

    async def _add_record(self, connection: AsyncConnection, head: ChainHead,
                          **fields: Any) -> tuple[AuditRecord, Checkpoint | None]:
        """Add the next record (and its checkpoint, if one is due) in the locked transaction."""
        values, checkpoint = self._next_record(head, fields)
        await connection.execute(insert(AuditRecord), values)
        if checkpoint is not None:
            await connection.execute(insert(AuditCheckpoint), checkpoint.as_json())
        return AuditRecord(**values), checkpoint

    def _append_sqlite(self, batch: list[dict[str, Any]]) -> list[tuple[AuditRecord, Checkpoint | None]]:
        """SQLite: the whole group commit in this (worker) thread, the same statements as :meth:`_open_chain`."""
        added = []
        with self.database.sqlite_sync_engine().begin() as connection:
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock before the head is read
            row = connection.execute(HEAD).one()
            head = ChainHead(row.seq, row.record_hash)
            for fields in batch:
                values, checkpoint = self._next_record(head, fields)
                connection.execute(insert(AuditRecord), values)
                if checkpoint is not None:
                    connection.execute(insert(AuditCheckpoint), checkpoint.as_json())
                added.append((AuditRecord(**values), checkpoint))
            connection.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=head.seq,
                                                                                 record_hash=head.record_hash))
        return added

    async def _ensure_ready(self) -> None:
        """Migrate the tables, create the head row and the checkpoint key, once per instance."""
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
            checkpoints = (await connection.execute(select(func.count()).select_from(AuditCheckpoint))).scalar()
        self._key, created = CheckpointKey.load_or_create(self.data_dir)
        if created and checkpoints:
            logger.warning(
                "created a new audit checkpoint key in %s although the database holds %d checkpoints; "
                "they were signed with another key and will not verify (restore the old key file?)",
                self.data_dir, checkpoints,
            )
        self._ready = True

    def _signing_key(self) -> CheckpointKey:
        assert self._key is not None, "the key is loaded by _ensure_ready"
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
        return self._lock

    def _waiting(self) -> list[PendingRecord]:
        """The records of this event loop waiting to be written."""
        self._process_lock()
        return self._pending


def _record_from_row(row: Any) -> AuditRecord:
    fields = row._asdict()
    if fields["payload"] is not None:
        try:
            fields["payload"] = json.loads(fields["payload"])
        except ValueError:
            pass
    return AuditRecord(**fields)
