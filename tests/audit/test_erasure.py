"""Erasure removes payloads (retention, deletion requests) and the chain still verifies."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ringfence.audit.log import AuditLog
from ringfence.audit.records import EventKind
from ringfence.store.database import Database
from tests.audit.conftest import fill

pytestmark = pytest.mark.anyio


async def test_erasing_a_principals_payloads_removes_them_and_the_chain_still_verifies(log: AuditLog) -> None:
    written = await fill(log, 4)  # principals alternate: user-1, user-0, user-1, user-0
    erased = await log.erase_payloads(principal="user-1")
    records = [record async for record in log.query()]
    report = await log.verify()
    assert erased == 2
    assert report.ok, report.summary()
    assert [r.payload for r in records[:4]] == [None, {"query": "grace 2"}, None, {"query": "grace 4"}]
    assert [r.payload_salt is None for r in records[:4]] == [True, False, True, False]  # the hash confirms no guess
    assert [r.payload_hash for r in records[:4]] == [r.payload_hash for r in written]
    assert [r.erased_at is not None for r in records[:4]] == [True, False, True, False]
    assert [r.record_hash for r in records[:4]] == [r.record_hash for r in written]


async def test_an_erasure_is_itself_recorded(log: AuditLog) -> None:
    await fill(log, 4)
    await log.erase_payloads(principal="user-0")
    [erasure] = [record async for record in log.query(kind=EventKind.PAYLOADS_ERASED)]
    assert (erasure.seq, erasure.principal, erasure.outcome) == (5, "ringfence", "ok")
    assert erasure.payload == {"principal": "user-0", "before": None, "records": 2}


async def test_erasing_payloads_older_than_a_time_keeps_the_newer_ones(log: AuditLog) -> None:
    await fill(log, 2)
    time.sleep(0.002)
    cutoff = datetime.now(UTC)
    time.sleep(0.002)
    await fill(log, 2)
    assert await log.erase_payloads(before=cutoff) == 2
    payloads = [record.payload async for record in log.query(kind="tool.call")]
    assert payloads == [None, None, {"query": "grace 1"}, {"query": "grace 2"}]
    assert (await log.verify()).ok


async def test_erasure_names_whose_payloads_or_up_to_when(log: AuditLog) -> None:
    await fill(log, 1)
    with pytest.raises(ValueError, match="principal"):
        await log.erase_payloads()


async def test_an_erased_payload_no_longer_appears_in_the_sqlite_files(
    log: AuditLog, database: Database, tmp_path: Path,
) -> None:
    """secure_delete overwrites the old bytes and the WAL is emptied, so no copy stays on disk
    while the server runs (closing the database would checkpoint the WAL anyway)."""
    if database.url.get_backend_name() != "sqlite":
        pytest.skip("PostgreSQL keeps old row versions until VACUUM; see the README")
    await fill(log, 3, principal="user-9", payload={"note": "secret-marker-8c1f"})
    await fill(log, 2)
    await log.erase_payloads(principal="user-9")
    on_disk = b"".join(path.read_bytes() for path in tmp_path.glob("ringfence.db*"))
    assert b"grace 1" in on_disk  # the other payloads are there to be found
    assert b"secret-marker-8c1f" not in on_disk
