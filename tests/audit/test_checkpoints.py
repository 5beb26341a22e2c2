"""Signed checkpoints: the key file, when checkpoints are written, and where they are kept."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from ringfence.audit import AuditError, AuditLog
from ringfence.audit.checkpoints import KEY_FILE, Checkpoint, CheckpointFile, CheckpointKey
from ringfence.audit.models import AuditCheckpoint
from ringfence.store.database import Database
from tests.audit.conftest import fill

pytestmark = pytest.mark.anyio


async def stored_checkpoints(database: Database) -> list[Checkpoint]:
    async with database.session() as session:
        rows = (await session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))).all()
    return [Checkpoint(r.seq, r.record_hash, r.ts, r.key_id, r.signature) for r in rows]


async def test_the_key_is_created_on_first_use_with_mode_0600(log: AuditLog) -> None:
    assert not (log.data_dir / KEY_FILE).exists()
    await fill(log, 1)
    assert stat.S_IMODE((log.data_dir / KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(log.data_dir.stat().st_mode) == 0o700


async def test_every_nth_record_is_signed_in_the_database_and_the_file(log: AuditLog, database: Database) -> None:
    records = await fill(log, 11)  # checkpoint_every=5
    in_database = await stored_checkpoints(database)
    key = CheckpointKey.load(log.data_dir)
    assert key is not None
    assert [(c.seq, c.record_hash) for c in in_database] == [(5, records[4].record_hash), (10, records[9].record_hash)]
    assert CheckpointFile(log.data_dir).read() == in_database
    assert all(key.problem(c) is None for c in in_database)


async def test_a_checkpoint_on_demand_signs_the_newest_record_once(log: AuditLog, database: Database) -> None:
    records = await fill(log, 3)
    first = await log.checkpoint()
    again = await log.checkpoint()
    report = await log.verify()
    assert first is not None and (first.seq, first.record_hash) == (3, records[-1].record_hash)
    assert again == first
    assert await stored_checkpoints(database) == [first]
    assert report.checkpoint_seq == 3


async def test_no_checkpoint_on_an_empty_log(log: AuditLog) -> None:
    assert await log.checkpoint() is None


async def test_automatic_checkpoints_can_be_turned_off(database: Database, data_dir: Path) -> None:
    log = AuditLog(database, data_dir, checkpoint_every=None)
    await fill(log, 6)
    assert await stored_checkpoints(database) == []


def test_processes_creating_the_key_at_once_all_get_the_same_key(tmp_path: Path) -> None:
    keys: list[str] = []
    start = threading.Barrier(8)

    def create() -> None:
        start.wait()
        keys.append(CheckpointKey.load_or_create(tmp_path)[0].key_id)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert [path.name for path in tmp_path.iterdir()] == [KEY_FILE]  # no temporary file left behind


async def test_a_damaged_key_file_is_an_audit_error_not_a_crash(log: AuditLog) -> None:
    await fill(log, 5)
    (log.data_dir / KEY_FILE).write_text("not a key")
    with pytest.raises(AuditError, match="not an unencrypted Ed25519 private key"):
        await AuditLog(log.database, log.data_dir).verify()
