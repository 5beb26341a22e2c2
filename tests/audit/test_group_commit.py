"""Group commit: appends waiting together are written in one transaction, and one caller's
cancellation never costs another caller its record (a client may cancel its own call at any time)."""

from __future__ import annotations

import asyncio

import pytest

from ringfence.audit import AuditLog

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
