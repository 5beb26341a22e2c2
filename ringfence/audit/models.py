"""The audit log's tables: the records, the chain head, and the signed checkpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm.attributes import instance_dict

from ringfence.audit.records import parse_time
from ringfence.store.database import InternalModel


class AuditRecord(InternalModel):
    """One event. ``record_hash`` covers every field but the payload, which it covers by its hash.

    Rows are only ever inserted, except that erasure sets ``payload`` and ``payload_salt`` to NULL
    and sets ``erased_at``.
    """

    __tablename__ = "ringfence_audit"
    __table_args__ = (
        Index("ix_ringfence_audit_ts", "ts"),
        Index("ix_ringfence_audit_principal", "principal"),
        Index("ix_ringfence_audit_request_id", "request_id"),
        Index("ix_ringfence_audit_session_hash", "session_hash"),
    )

    # On SQLite an INTEGER primary key is the rowid: records are stored in sequence order.
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=False)  # fmt: skip
    # records.TIME_FORMAT, UTC; compared byte by byte (collation "C") so that it sorts as time does.
    ts: Mapped[str] = mapped_column(String(32).with_variant(String(32, collation="C"), "postgresql"))
    kind: Mapped[str] = mapped_column(String(64))
    principal: Mapped[str] = mapped_column(String(255))
    tool: Mapped[str | None] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(64))
    latency_ms: Mapped[float | None] = mapped_column(Float)
    # none_as_null: "no payload" is SQL NULL, never the JSON text 'null'.
    payload: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    payload_salt: Mapped[str | None] = mapped_column(String(32))  # hex; erased with the payload
    payload_hash: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    record_hash: Mapped[str] = mapped_column(String(64))
    erased_at: Mapped[str | None] = mapped_column(String(32))
    # Since revision 0004 (NULL in older records; audit/correlation.py): the request id its log lines
    # carry, and a keyed hash of the host's session id. Both are covered by record_hash when set.
    request_id: Mapped[str | None] = mapped_column(String(128))
    session_hash: Mapped[str | None] = mapped_column(String(16))

    @classmethod
    def stored(cls, fields: dict[str, Any]) -> AuditRecord:
        """The record with these fields, as written or read back.

        Made the way a query makes the objects it loads: the fields are set without the change
        tracking of ``cls(**fields)``, which only a session would use (records are inserted with
        SQL, never through a session) and which costs as much as the rest of an append.
        """
        record = cls.__mapper__.class_manager.new_instance()
        instance_dict(record).update(fields)
        return record

    def as_json(self) -> dict[str, Any]:
        """The record as a JSON object, as ``ringfence audit show`` prints it."""
        return {
            "seq": self.seq, "ts": self.ts, "kind": self.kind, "principal": self.principal, "tool": self.tool,
            "outcome": self.outcome, "latency_ms": self.latency_ms, "payload": self.payload,
            "payload_salt": self.payload_salt, "payload_hash": self.payload_hash, "prev_hash": self.prev_hash,
            "record_hash": self.record_hash, "erased_at": self.erased_at, "request_id": self.request_id,
            "session_hash": self.session_hash,
        }

    @property
    def timestamp(self) -> datetime:
        """``ts`` as an aware UTC datetime."""
        return parse_time(self.ts)

    def __repr__(self) -> str:
        return f"<AuditRecord #{self.seq} {self.kind} {self.outcome}>"


class AuditHead(InternalModel):
    """The one row (``id`` 1) naming the last record. Appends lock it, so there is one chain."""

    __tablename__ = "ringfence_audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    record_hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(InternalModel):
    """A signature over (seq, record_hash, ts, key_id): the chain held this record at that time."""

    __tablename__ = "ringfence_audit_checkpoints"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=False)  # fmt: skip
    record_hash: Mapped[str] = mapped_column(String(64))
    ts: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(128))  # Ed25519, hex
