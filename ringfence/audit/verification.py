"""Walk the chain and name the first record that is not as it was written.

What each kind of damage means, in the order a record is checked:

``missing``            a sequence number is absent: a record was deleted
``modified``           the stored record hash is not the hash of the record's fields
``broken-link``        ``prev_hash`` is not the previous record's hash: records were reordered or
                       inserted, or the previous record was rewritten with a recomputed hash
``payload-tampered``   the payload (with its salt) does not hash to ``payload_hash``, or vanished
                       without an erasure mark
``rewritten``          the record differs from a signed checkpoint: the chain up to it was recomputed
``truncated``          the chain ends before a signed checkpoint or the chain head: the tail was cut
``inserted``           a record lies beyond the chain head: it was added outside the audit log
``forged-checkpoint``  a checkpoint's signature does not verify with the data folder's key
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Text, cast, inspect, select
from sqlalchemy.engine import Row

from ringfence.audit.checkpoints import Checkpoint, CheckpointFile, CheckpointKey
from ringfence.audit.errors import AuditError
from ringfence.audit.models import AuditCheckpoint, AuditHead, AuditRecord
from ringfence.audit.records import GENESIS_HASH, parse_time, payload_hash, record_hash
from ringfence.store.database import Database

BATCH_SIZE = 1000

# Every column of a record, the payload as its stored text: a tampered payload may not even be JSON.
RECORD_COLUMNS = (
    AuditRecord.seq, AuditRecord.ts, AuditRecord.kind, AuditRecord.principal, AuditRecord.tool, AuditRecord.outcome,
    AuditRecord.latency_ms, cast(AuditRecord.payload, Text).label("payload"), AuditRecord.payload_salt,
    AuditRecord.payload_hash, AuditRecord.prev_hash, AuditRecord.record_hash, AuditRecord.erased_at,
    AuditRecord.request_id, AuditRecord.session_hash,
)
# In the order of Checkpoint's fields.
CHECKPOINT_COLUMNS = (AuditCheckpoint.seq, AuditCheckpoint.record_hash, AuditCheckpoint.ts, AuditCheckpoint.key_id,
                      AuditCheckpoint.signature)  # fmt: skip


class DamageKind(StrEnum):
    MISSING = "missing"
    MODIFIED = "modified"
    BROKEN_LINK = "broken-link"
    PAYLOAD_TAMPERED = "payload-tampered"
    REWRITTEN = "rewritten"
    TRUNCATED = "truncated"
    INSERTED = "inserted"
    FORGED_CHECKPOINT = "forged-checkpoint"


@dataclass(frozen=True)
class Damage:
    """The first bad record: its sequence number, what is wrong, and a sentence for people."""

    seq: int
    kind: DamageKind
    detail: str

    def __str__(self) -> str:
        return f"record #{self.seq} ({self.kind}): {self.detail}"


@dataclass(frozen=True)
class VerifyReport:
    records: int  # records checked, up to the first damage
    last_seq: int  # the last record checked
    checkpoint_seq: int | None  # the newest signed checkpoint the chain matched
    damage: Damage | None
    checkpoint_ts: str | None = None  # when that checkpoint was signed

    @property
    def ok(self) -> bool:
        return self.damage is None

    @property
    def unsigned(self) -> int:
        """Records after the newest signed checkpoint: the chain alone guards them, so someone who
        can write to the database could cut them from the end unnoticed."""
        return self.last_seq - (self.checkpoint_seq or 0)

    def summary(self, at: datetime | None = None) -> str:
        """One line: the verdict, what it covers, and the tail no checkpoint covers yet: how many
        records, and how long ago (from ``at``, default now) the last checkpoint was signed."""
        if self.damage is not None:
            return f"audit log damaged at {self.damage}"
        if self.records == 0:
            return "audit log intact: no records yet"
        covered = f"records #1 to #{self.last_seq}"
        if self.checkpoint_seq is None:
            return f"audit log intact: {covered}; no signed checkpoint yet, so none of them is covered by one"
        signed = f"last signed checkpoint at #{self.checkpoint_seq} ({self.checkpoint_ts}"
        signed += f", {_age(self.checkpoint_ts, at or datetime.now(UTC))} ago)"
        if self.unsigned == 0:
            return f"audit log intact: {covered}; {signed} covers them all"
        records = "record after it is" if self.unsigned == 1 else "records after it are"
        return f"audit log intact: {covered}; {signed}; {self.unsigned} {records} not yet covered"


def _age(then: str | None, at: datetime) -> str:
    try:
        seconds = max(0, round((at - parse_time(then or "")).total_seconds()))
    except ValueError:
        return "an unknown time"
    for unit, size, up_to in (("s", 1, 120), ("min", 60, 120 * 60), ("h", 3600, 48 * 3600)):
        if seconds < up_to:
            return f"{seconds // size} {unit}"
    return f"{seconds // 86400} days"


async def verify_chain(
    database: Database, *, key: CheckpointKey | None, checkpoint_file: CheckpointFile | None,
    batch_size: int = BATCH_SIZE,
) -> VerifyReport:
    """Check every record in sequence order, in batches, and every checkpoint; stop at the first damage.

    Raises :class:`AuditError` when there is no audit log in the database, or when there are
    checkpoints but no key to check them with: neither is reported as an intact log.
    """
    if not await has_audit_tables(database):
        raise AuditError("there is no audit log in this database (check --database-url)")
    checkpoints = await _stored_checkpoints(database)
    if checkpoint_file is not None:
        checkpoints += checkpoint_file.read()
    if checkpoints and key is None:
        raise AuditError(
            f"there are {len(checkpoints)} signed checkpoints but no checkpoint key in the data folder "
            "(check --data-dir); without it the log cannot be verified"
        )
    signed, forged = _check_signatures(checkpoints, key)
    head_before = await _head_seq(database)

    count, last_seq, prev_hash = 0, 0, GENESIS_HASH
    damage: Damage | None = None
    async for row in _records(database, batch_size):
        damage = _check_record(row, last_seq + 1, prev_hash, signed)
        if damage is not None:
            break
        count, last_seq, prev_hash = count + 1, row.seq, row.record_hash
    if damage is None:
        damage = await _check_tail(database, last_seq, head_before, signed)
    if forged is not None and (damage is None or forged.seq < damage.seq):
        damage = forged
    newest = max((seq for seq in signed if seq <= last_seq), default=None)
    signed_at = min((c.ts for c in checkpoints if c.seq == newest), default=None)
    return VerifyReport(count, last_seq, newest, damage, signed_at)


async def has_audit_tables(database: Database) -> bool:
    async with database.engine.connect() as connection:
        return await connection.run_sync(lambda sync: inspect(sync).has_table(AuditRecord.__tablename__))


def _check_record(row: Row[Any], expected: int, prev_hash: str, signed: dict[int, set[str]]) -> Damage | None:
    seq = row.seq
    if seq < expected:  # only possible before #1: sequence numbers are unique and walked in order
        return Damage(seq, DamageKind.INSERTED, "sequence numbers start at #1")
    if seq > expected:
        where = "starts at" if expected == 1 else f"jumps from #{expected - 1} to"
        return Damage(expected, DamageKind.MISSING, f"the chain {where} #{seq}, so records were deleted")
    computed = record_hash(
        seq=seq, ts=row.ts, kind=row.kind, principal=row.principal, tool=row.tool, outcome=row.outcome,
        latency_ms=row.latency_ms, payload_hash=row.payload_hash, prev_hash=row.prev_hash,
        request_id=row.request_id, session_hash=row.session_hash,
    )
    if computed != row.record_hash:
        return Damage(seq, DamageKind.MODIFIED, "its fields do not match its record_hash")
    if row.prev_hash != prev_hash:
        previous = "the chain start" if seq == 1 else f"record #{seq - 1}"
        return Damage(seq, DamageKind.BROKEN_LINK,
                      f"its prev_hash is not the hash of {previous}, so records were reordered or inserted, "
                      f"or #{seq - 1} was rewritten")
    problem = _payload_problem(row.payload, row.payload_salt, row.payload_hash, row.erased_at)
    if problem is not None:
        return Damage(seq, DamageKind.PAYLOAD_TAMPERED, problem)
    if seq in signed and signed[seq] != {row.record_hash}:
        return Damage(seq, DamageKind.REWRITTEN,
                      "it differs from its signed checkpoint, so the chain up to it was recomputed")
    return None


def _payload_problem(raw: str | None, salt: str | None, expected: str | None, erased_at: str | None) -> str | None:
    # Erasure removes the payload and its salt and keeps its hash; the record hash covers only the hash.
    if raw is None:
        if salt is not None:
            return "it has a payload salt but no payload"
        if expected is not None and erased_at is None:
            return "its payload was removed without being erased"
        return None
    try:
        value = json.loads(raw)
        matches = expected is not None and salt is not None and payload_hash(value, salt) == expected
    except ValueError:  # not JSON, or a salt that is not hex
        return "its payload or salt is unreadable"
    return None if matches else "its payload does not match its payload_hash"


async def _check_tail(
    database: Database, last_seq: int, head_before: int, signed: dict[int, set[str]],
) -> Damage | None:
    newest_signed = max(signed, default=0)
    if last_seq < max(newest_signed, head_before):
        by = (f"a signed checkpoint names #{newest_signed}" if newest_signed >= head_before
              else f"the chain head names #{head_before}")  # fmt: skip
        return Damage(last_seq + 1, DamageKind.TRUNCATED, f"the chain ends at #{last_seq} but {by}")
    # Read after the walk: an append commits its record and the head together, so a record seen in
    # the walk is never beyond a head read later, even while other processes append.
    head_after = await _head_seq(database)
    if last_seq > head_after:
        return Damage(head_after + 1, DamageKind.INSERTED,
                      f"the chain head ends at #{head_after}, so it was added outside the audit log")
    return None


def _check_signatures(checkpoints: Sequence[Checkpoint], key: CheckpointKey | None
                      ) -> tuple[dict[int, set[str]], Damage | None]:  # fmt: skip
    """The record hashes signed for each seq, and the first (lowest) forged checkpoint."""
    signed: dict[int, set[str]] = {}
    forged: Damage | None = None
    for checkpoint in sorted(checkpoints, key=lambda c: c.seq):
        problem = key.problem(checkpoint) if key is not None else "there is no key"
        if problem is None:
            signed.setdefault(checkpoint.seq, set()).add(checkpoint.record_hash)
        elif forged is None:
            forged = Damage(checkpoint.seq, DamageKind.FORGED_CHECKPOINT, f"its checkpoint is forged: {problem}")
    return signed, forged


async def _stored_checkpoints(database: Database) -> list[Checkpoint]:
    # One row per thousand records or per minute of a server (audit/schedule.py): they fit in memory.
    async with database.engine.connect() as connection:
        rows = (await connection.execute(select(*CHECKPOINT_COLUMNS))).all()
    return [Checkpoint(*row) for row in rows]


async def _head_seq(database: Database) -> int:
    async with database.engine.connect() as connection:
        seq = (await connection.execute(select(AuditHead.seq).where(AuditHead.id == 1))).scalar()
    return seq or 0


async def _records(database: Database, batch_size: int) -> AsyncIterator[Row[Any]]:
    """All records in sequence order, ``batch_size`` at a time, each batch in a short read."""
    after: int | None = None  # no lower bound at first: a forged record #0 or #-1 is walked too
    while True:
        statement = select(*RECORD_COLUMNS).order_by(AuditRecord.seq).limit(batch_size)
        if after is not None:
            statement = statement.where(AuditRecord.seq > after)
        async with database.engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        for row in rows:
            yield row
        if len(rows) < batch_size:
            return
        after = rows[-1].seq
