"""Group commit: appends waiting together are written in one transaction, and one caller's
cancellation never costs another caller its record (a client may cancel its own call at any time)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from ringfence.audit import log as log_module
from ringfence.audit.log import AuditLog
from ringfence.store.database import Database

pytestmark = pytest.mark.anyio


async def test_concurrent_appends_all_commit_in_order_and_verify(log: AuditLog) -> None:
    records = await asyncio.gather(*(log.append("tool.call", principal=f"p{i}", outcome="ok") for i in range(50)))
    assert sorted(record.seq for record in records) == list(range(1, 51))
    assert (await log.verify()).ok


async def test_cancelling_the_appender_that_writes_the_batch_does_not_lose_the_others(log: AuditLog) -> None:
    await log.append("tool.call", principal="warm-up", outcome="ok")  # tables and head exist
    first = asyncio.create_task(log.append("tool.call", principal="cancelled", outcome="ok"))
    others = [asyncio.create_task(log.append("tool.call", principal=f"other-{i}", outcome="ok")) for i in range(5)]
    await asyncio.sleep(0)  # the first holds the lock now, the others wait in the batch queue
    first.cancel()
    written = await asyncio.gather(*others)
    assert [record.principal for record in written] == [f"other-{i}" for i in range(5)]
    report = await log.verify()
    assert report.ok
    principals = [record.principal async for record in log.query()]
    assert {f"other-{i}" for i in range(5)} <= set(principals)


class HeldWriteLock:
    """SQLite's write lock, held by another connection (another process, or the app's own writes)."""

    def __init__(self, database: Database) -> None:
        assert database.url.database is not None
        self.connection = sqlite3.connect(database.url.database, isolation_level=None)
        self.connection.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.connection.execute("ROLLBACK")
        self.connection.close()


def batch_sizes(log: AuditLog, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of records of each SQLite transaction the log attempts, as it attempts them."""
    sizes: list[int] = []
    append_sqlite = log._append_sqlite

    def spy(batch, **options):  # type: ignore[no-untyped-def]
        sizes.append(len(batch))
        return append_sqlite(batch, **options)

    monkeypatch.setattr(log, "_append_sqlite", spy)
    return sizes


@pytest.fixture
def sqlite_log(log: AuditLog, database: Database) -> AuditLog:
    if database.url.get_backend_name() != "sqlite":
        pytest.skip("SQLite only")
    return log


async def test_appends_wait_for_sqlites_write_lock_off_the_event_loop_then_commit_together(
    sqlite_log: AuditLog, database: Database, monkeypatch: pytest.MonkeyPatch,
) -> None:
    await sqlite_log.append("tool.call", principal="warm-up", outcome="ok")
    sizes = batch_sizes(sqlite_log, monkeypatch)
    lock = HeldWriteLock(database)
    appends = [asyncio.create_task(sqlite_log.append("tool.call", principal=f"p{i}", outcome="ok")) for i in range(5)]
    began = time.monotonic()
    for _ in range(10):  # the event loop goes on meanwhile
        await asyncio.sleep(0.01)
    assert time.monotonic() - began < 1 and not any(append.done() for append in appends)
    lock.release()
    records = await asyncio.gather(*appends)
    assert [record.principal for record in records] == [f"p{i}" for i in range(5)]
    assert sorted(record.seq for record in records) == list(range(2, 7))
    assert sizes[-1] == 4, sizes  # the four that queued behind the first are one transaction
    assert (await sqlite_log.verify()).ok


async def test_cancelling_the_appender_waiting_for_sqlites_write_lock_does_not_lose_the_others(
    sqlite_log: AuditLog, database: Database,
) -> None:
    await sqlite_log.append("tool.call", principal="warm-up", outcome="ok")
    lock = HeldWriteLock(database)
    first = asyncio.create_task(sqlite_log.append("tool.call", principal="cancelled", outcome="ok"))
    await asyncio.sleep(0.01)  # the first waits for the write lock in a worker thread
    others = [asyncio.create_task(sqlite_log.append("tool.call", principal=f"other-{i}", outcome="ok"))
              for i in range(5)]  # fmt: skip
    await asyncio.sleep(0.01)
    first.cancel()
    lock.release()
    written = await asyncio.gather(*others)
    with pytest.raises(asyncio.CancelledError):
        await first
    assert [record.principal for record in written] == [f"other-{i}" for i in range(5)]
    assert (await sqlite_log.verify()).ok


async def test_the_logs_commits_keep_sqlites_write_ahead_log_short(
    sqlite_log: AuditLog, database: Database, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its connections do not checkpoint on commit (that would sync the disk on the event loop); it
    checkpoints every WAL_CHECKPOINT_EVERY commits instead, in a worker thread."""
    monkeypatch.setattr(log_module, "WAL_CHECKPOINT_EVERY", 10)
    for number in range(300):
        await sqlite_log.append("tool.call", principal="p", outcome="ok", payload={"query": "x" * 200, "n": number})
    wal = Path(f"{database.url.database}-wal")
    assert wal.stat().st_size < 1024 * 1024, "the write-ahead log grew with every commit"  # 5.7 MB unchecked
    assert (await sqlite_log.verify()).ok
