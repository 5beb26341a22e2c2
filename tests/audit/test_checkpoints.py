"""Signed checkpoints: the key file, when checkpoints are written (the schedule), and where they are kept."""

from __future__ import annotations

import asyncio
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from ringfence.audit.checkpoints import KEY_FILE, Checkpoint, CheckpointFile, CheckpointKey
from ringfence.audit.errors import AuditError
from ringfence.audit.log import AuditLog
from ringfence.audit.models import AuditCheckpoint
from ringfence.audit.schedule import CheckpointSchedule
from ringfence.store.database import Database
from tests.audit.conftest import fill

pytestmark = pytest.mark.anyio


async def stored_checkpoints(database: Database) -> list[Checkpoint]:
    async with database.session() as session:
        rows = (await session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))).all()
    return [Checkpoint(r.seq, r.record_hash, r.ts, r.key_id, r.signature) for r in rows]


async def signed_seqs(database: Database, *, at_least: int) -> list[int]:
    """The checkpoints' record numbers, once one names ``at_least`` or later (the schedule is a task)."""
    for _ in range(500):
        seqs = [c.seq for c in await stored_checkpoints(database)]
        if seqs and seqs[-1] >= at_least:
            return seqs
        await asyncio.sleep(0.01)
    return seqs


async def append(log: AuditLog, count: int) -> None:
    for _ in range(count):
        await log.append("tool.call", principal="p", outcome="ok")


async def test_the_schedule_makes_the_key_when_it_starts_with_mode_0600(log: AuditLog) -> None:
    assert not (log.data_dir / KEY_FILE).exists()
    schedule = CheckpointSchedule(log, every=10, interval=3600)
    schedule.start()
    await schedule.stop()
    assert stat.S_IMODE((log.data_dir / KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(log.data_dir.stat().st_mode) == 0o700


async def test_the_schedule_signs_the_newest_record_every_n_records(log: AuditLog, database: Database) -> None:
    schedule = CheckpointSchedule(log, every=3, interval=3600)
    schedule.start()
    try:
        await append(log, 3)
        assert await signed_seqs(database, at_least=3) == [3]
        await append(log, 2)
        await asyncio.sleep(0.05)
        assert [c.seq for c in await stored_checkpoints(database)] == [3]  # 2 new records: not due yet
        await append(log, 1)
        assert await signed_seqs(database, at_least=6) == [3, 6]
    finally:
        await schedule.stop()


async def test_the_schedule_signs_after_the_interval_when_records_are_few(log: AuditLog, database: Database) -> None:
    schedule = CheckpointSchedule(log, every=1000, interval=0.05)
    schedule.start()
    try:
        await append(log, 2)
        assert await signed_seqs(database, at_least=2) == [2]
    finally:
        await schedule.stop()


async def test_stopping_the_schedule_signs_the_tail(log: AuditLog, database: Database) -> None:
    schedule = CheckpointSchedule(log, every=1000, interval=3600)
    schedule.start()
    await append(log, 4)
    await schedule.stop()
    assert [c.seq for c in await stored_checkpoints(database)] == [4]
    assert (await log.verify()).unsigned == 0


async def test_a_checkpoint_without_the_key_is_refused_not_made_with_a_new_key(log: AuditLog) -> None:
    """Only the server's schedule makes the key: a command run against the wrong data folder must
    not sign with a key the servers do not have."""
    await append(log, 1)
    with pytest.raises(AuditError, match="no audit checkpoint key"):
        await log.checkpoint()
    assert not (log.data_dir / KEY_FILE).exists()


async def test_checkpoints_are_kept_in_the_database_and_the_file(log: AuditLog, database: Database) -> None:
    records = await fill(log, 11)  # signs #5 and #10
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
    assert await log.checkpoint(create_key=True) is None


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
