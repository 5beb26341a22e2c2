"""Every kind of tampering with the stored log is found, and the first bad record is named.

Each test changes the database the way someone with write access to it could, with plain SQL,
then expects ``verify`` to name the record and the kind of damage.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ringfence.audit.checkpoints import CHECKPOINT_FILE, KEY_FILE, CheckpointKey
from ringfence.audit.errors import AuditError
from ringfence.audit.log import AuditLog
from ringfence.audit.models import AuditRecord
from ringfence.audit.records import record_hash
from ringfence.audit.verification import DamageKind
from ringfence.store.database import Database
from tests.audit.conftest import fill, sql

pytestmark = pytest.mark.anyio

RECORDS = AuditRecord.__table__


async def damage_of(log: AuditLog) -> tuple[int, DamageKind]:
    report = await log.verify()
    assert report.damage is not None, "the tampering went unnoticed"
    return report.damage.seq, report.damage.kind


async def rows(database: Database) -> dict[int, dict]:
    async with database.engine.connect() as connection:
        return {row.seq: row._asdict() for row in await connection.execute(select(RECORDS).order_by(RECORDS.c.seq))}


async def rewrite(database: Database, at: int, **values: object) -> None:
    """Overwrite the record at sequence number ``at`` with ``values``."""
    async with database.engine.begin() as connection:
        await connection.execute(update(RECORDS).where(RECORDS.c.seq == at).values(**values))


def rehash(row: dict) -> str:
    """What an attacker who knows the (public) hash rule computes for a changed record."""
    return record_hash(**{k: row[k] for k in ("seq", "ts", "kind", "principal", "tool", "outcome", "latency_ms",
                                              "payload_hash", "prev_hash")})  # fmt: skip


async def test_changed_field_is_named_as_modified(log: AuditLog, database: Database) -> None:
    await fill(log, 4, outcome="refused")
    await sql(database, "UPDATE ringfence_audit SET outcome = 'ok' WHERE seq = 3")
    assert await damage_of(log) == (3, DamageKind.MODIFIED)


async def test_deleted_record_is_named_as_missing(log: AuditLog, database: Database) -> None:
    await fill(log, 4)
    await sql(database, "DELETE FROM ringfence_audit WHERE seq = 2")
    assert await damage_of(log) == (2, DamageKind.MISSING)


async def test_deleted_first_record_is_named_as_missing(log: AuditLog, database: Database) -> None:
    await fill(log, 3)
    await sql(database, "DELETE FROM ringfence_audit WHERE seq = 1")
    assert await damage_of(log) == (1, DamageKind.MISSING)


async def test_swapped_records_are_named_at_the_first_of_them(log: AuditLog, database: Database) -> None:
    """Two records exchange their contents; each keeps its place (seq), which its hash covers."""
    await fill(log, 4)
    before = await rows(database)
    await rewrite(database, 2, **{k: v for k, v in before[3].items() if k != "seq"})
    await rewrite(database, 3, **{k: v for k, v in before[2].items() if k != "seq"})
    assert await damage_of(log) == (2, DamageKind.MODIFIED)


async def test_reordered_records_with_recomputed_hashes_break_the_link(log: AuditLog, database: Database) -> None:
    """An attacker swaps two records and recomputes their hashes: their prev_hash no longer links."""
    await fill(log, 4)
    before = await rows(database)
    for seq, source in ((2, before[3]), (3, before[2])):
        moved = {**source, "seq": seq}
        await rewrite(database, seq, **{**moved, "record_hash": rehash(moved)})
    assert await damage_of(log) == (2, DamageKind.BROKEN_LINK)


async def test_record_forged_mid_chain_breaks_it_at_the_record_after(log: AuditLog, database: Database) -> None:
    """A forged #3 that links to #2 and hashes correctly; the real #3 and #4 are moved up one place."""
    await fill(log, 4)
    before = await rows(database)
    for seq in (4, 3):
        await sql(database, "UPDATE ringfence_audit SET seq = :new WHERE seq = :old", new=seq + 1, old=seq)
    forged = {**before[3], "outcome": "ok", "tool": "export_everything", "prev_hash": before[2]["record_hash"]}
    async with database.engine.begin() as connection:
        await connection.execute(RECORDS.insert().values(**{**forged, "record_hash": rehash(forged)}))
    assert await damage_of(log) == (4, DamageKind.MODIFIED)


async def test_record_added_after_the_last_one_is_named_as_inserted(log: AuditLog, database: Database) -> None:
    """A correctly hashed and linked record added with plain SQL: the chain head does not know it."""
    await fill(log, 3)
    last = (await rows(database))[3]
    forged = {**last, "seq": 4, "prev_hash": last["record_hash"], "outcome": "ok"}
    async with database.engine.begin() as connection:
        await connection.execute(RECORDS.insert().values(**{**forged, "record_hash": rehash(forged)}))
    assert await damage_of(log) == (4, DamageKind.INSERTED)


async def test_appending_after_a_record_added_with_plain_sql_fails_as_a_database_error(
    log: AuditLog, database: Database,
) -> None:
    """The next sequence number is taken: the append fails (the caller fails closed) with SQLAlchemy's
    error, as every database error reaches callers, and writes nothing."""
    await fill(log, 3)
    last = (await rows(database))[3]
    async with database.engine.begin() as connection:
        await connection.execute(RECORDS.insert().values(**{**last, "seq": 4}))
    for _ in range(2):
        with pytest.raises(IntegrityError):
            await log.append("tool.call", principal="p", outcome="ok", payload={"n": 1})
    assert sorted(await rows(database)) == [1, 2, 3, 4]


async def test_record_hash_recomputed_after_a_change_breaks_the_next_link(log: AuditLog, database: Database) -> None:
    await fill(log, 4)
    changed = {**(await rows(database))[2], "principal": "someone-else"}
    await rewrite(database, 2, principal="someone-else", record_hash=rehash(changed))
    assert await damage_of(log) == (3, DamageKind.BROKEN_LINK)


async def test_changed_payload_is_named_as_payload_tampered(log: AuditLog, database: Database) -> None:
    await fill(log, 4)
    await rewrite(database, 3, payload={"query": "something else"})
    assert await damage_of(log) == (3, DamageKind.PAYLOAD_TAMPERED)


async def test_payload_removed_without_an_erasure_mark_is_named_as_payload_tampered(
    log: AuditLog, database: Database,
) -> None:
    await fill(log, 4)
    await sql(database, "UPDATE ringfence_audit SET payload = NULL WHERE seq = 2")
    assert await damage_of(log) == (2, DamageKind.PAYLOAD_TAMPERED)


async def test_payload_that_is_not_json_is_named_as_payload_tampered(log: AuditLog, database: Database) -> None:
    """SQLite stores JSON as text, so a payload can be left unreadable; verify reads it as text."""
    if database.url.get_backend_name() != "sqlite":
        pytest.skip("PostgreSQL refuses text that is not JSON in a json column")
    await fill(log, 2)
    await sql(database, "UPDATE ringfence_audit SET payload = '{not json' WHERE seq = 2")
    assert await damage_of(log) == (2, DamageKind.PAYLOAD_TAMPERED)


async def test_tail_cut_after_a_checkpoint_is_named_as_truncated(log: AuditLog, database: Database) -> None:
    """Records #5 to #7 deleted and the chain head moved back to #4: the checkpoint at #5 remains."""
    await fill(log, 7)  # signs #5 (CHECKPOINT_EVERY)
    await sql(database, "DELETE FROM ringfence_audit WHERE seq >= 5")
    await sql(database, "UPDATE ringfence_audit_head SET seq = 4, record_hash = "
                        "(SELECT record_hash FROM ringfence_audit WHERE seq = 4)")  # fmt: skip
    assert await damage_of(log) == (5, DamageKind.TRUNCATED)


async def test_tail_cut_is_found_from_the_checkpoint_file_when_the_database_copies_are_gone(
    log: AuditLog, database: Database,
) -> None:
    await fill(log, 7)
    await sql(database, "DELETE FROM ringfence_audit WHERE seq >= 5")
    await sql(database, "DELETE FROM ringfence_audit_checkpoints")
    await sql(database, "UPDATE ringfence_audit_head SET seq = 4")
    assert await damage_of(log) == (5, DamageKind.TRUNCATED)


async def test_tail_cut_before_any_checkpoint_is_found_from_the_chain_head(log: AuditLog, database: Database) -> None:
    await fill(log, 4)
    await sql(database, "DELETE FROM ringfence_audit WHERE seq >= 3")
    assert await damage_of(log) == (3, DamageKind.TRUNCATED)


async def test_chain_recomputed_from_a_changed_record_is_caught_by_the_next_checkpoint(
    log: AuditLog, database: Database,
) -> None:
    """The attacker rewrites #2 and recomputes every later hash and the head; only the signature holds."""
    await fill(log, 7)
    chain = await rows(database)
    chain[2]["outcome"] = "ok-forged"
    prev = chain[1]["record_hash"]
    for seq in range(2, 8):
        chain[seq]["prev_hash"] = prev
        chain[seq]["record_hash"] = prev = rehash(chain[seq])
        await rewrite(database, seq, **chain[seq])
    await sql(database, "UPDATE ringfence_audit_head SET record_hash = :h", h=prev)
    assert await damage_of(log) == (5, DamageKind.REWRITTEN)


async def test_checkpoint_with_a_changed_signature_is_named_as_forged(log: AuditLog, database: Database) -> None:
    await fill(log, 6)
    (Path(log.data_dir) / CHECKPOINT_FILE).unlink()  # leave only the database's copy
    await sql(database, "UPDATE ringfence_audit_checkpoints SET signature = :s WHERE seq = 5", s="00" * 64)
    assert await damage_of(log) == (5, DamageKind.FORGED_CHECKPOINT)


async def test_checkpoint_signed_with_another_key_is_named_as_forged(
    log: AuditLog, database: Database, tmp_path: Path,
) -> None:
    """A checkpoint blessing a truncated chain, signed by a key that is not the data folder's."""
    await fill(log, 4)
    head = (await rows(database))[4]
    forger, _ = CheckpointKey.load_or_create(tmp_path / "forger")
    forged = forger.sign(4, head["record_hash"], head["ts"])
    await sql(database, "INSERT INTO ringfence_audit_checkpoints (seq, record_hash, ts, key_id, signature) "
                        "VALUES (:seq, :record_hash, :ts, :key_id, :signature)", **forged.as_json())  # fmt: skip
    assert await damage_of(log) == (4, DamageKind.FORGED_CHECKPOINT)


async def test_verify_refuses_to_pass_a_log_whose_checkpoint_key_is_missing(log: AuditLog) -> None:
    await fill(log, 5)
    (Path(log.data_dir) / KEY_FILE).unlink()
    with pytest.raises(AuditError, match="no checkpoint key"):
        await AuditLog(log.database, log.data_dir).verify()


async def test_the_first_of_several_damages_is_named(log: AuditLog, database: Database) -> None:
    await fill(log, 6)
    await sql(database, "DELETE FROM ringfence_audit WHERE seq = 5")
    await sql(database, "UPDATE ringfence_audit SET outcome = 'x' WHERE seq = 4")
    await sql(database, "UPDATE ringfence_audit_checkpoints SET signature = :s WHERE seq = 5", s="00" * 64)
    assert await damage_of(log) == (4, DamageKind.MODIFIED)


async def test_verify_walks_a_long_chain_in_batches(log: AuditLog, database: Database) -> None:
    from ringfence.audit.verification import verify_chain

    await fill(log, 7)
    await sql(database, "UPDATE ringfence_audit SET kind = 'tool.other' WHERE seq = 6")
    report = await verify_chain(database, key=CheckpointKey.load(log.data_dir), checkpoint_file=None, batch_size=2)
    assert report.damage is not None and (report.damage.seq, report.records) == (6, 5)
