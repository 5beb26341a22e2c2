"""Reading the log back: filters combine, times are half-open, results stream in sequence order."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from ringfence.audit import log as audit_log
from ringfence.audit.log import AuditLog
from ringfence.audit.records import EventKind

pytestmark = pytest.mark.anyio


async def seqs(log: AuditLog, **filters: object) -> list[int]:
    return [record.seq async for record in log.query(**filters)]  # type: ignore[arg-type]


async def test_filters_by_principal_tool_outcome_and_kind_combine(log: AuditLog) -> None:
    await log.append(EventKind.TOOL_CALL, principal="ann", tool="search", outcome="ok")
    await log.append(EventKind.TOOL_CALL, principal="bob", tool="search", outcome="ok")
    await log.append(EventKind.SCOPE_REFUSED, principal="ann", tool="delete", outcome="insufficient_scope")
    await log.append(EventKind.TOOL_CALL, principal="ann", tool="delete", outcome="error")
    assert await seqs(log, principal="ann") == [1, 3, 4]
    assert await seqs(log, principal="ann", tool="delete") == [3, 4]
    assert await seqs(log, principal="ann", tool="delete", kind="tool.call") == [4]
    assert await seqs(log, outcome="ok") == [1, 2]
    assert await seqs(log, principal="carol") == []


async def test_since_is_inclusive_and_until_exclusive(log: AuditLog) -> None:
    first = await log.append("tool.call", principal="p", outcome="ok")
    time.sleep(0.002)
    second = await log.append("tool.call", principal="p", outcome="ok")
    time.sleep(0.002)
    await log.append("tool.call", principal="p", outcome="ok")
    assert await seqs(log, since=second.timestamp) == [2, 3]
    assert await seqs(log, until=second.timestamp) == [1]
    assert await seqs(log, since=first.timestamp, until=datetime.now(UTC)) == [1, 2, 3]
    assert await seqs(log, since=second.timestamp.replace(tzinfo=None)) == [2, 3]  # naive times are UTC


async def test_limit_and_newest_first_page_through_every_batch(log: AuditLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_log, "QUERY_BATCH_SIZE", 2)
    for _ in range(5):
        await log.append("tool.call", principal="p", outcome="ok")
    assert await seqs(log) == [1, 2, 3, 4, 5]
    assert await seqs(log, limit=3) == [1, 2, 3]
    assert await seqs(log, newest_first=True) == [5, 4, 3, 2, 1]
    assert await seqs(log, newest_first=True, limit=3) == [5, 4, 3]
