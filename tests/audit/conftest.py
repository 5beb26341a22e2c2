"""Audit log fixtures: a fresh log on SQLite and on PostgreSQL, and raw SQL to tamper with it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from ringfence.audit.checkpoints import CheckpointKey
from ringfence.audit.log import AuditLog
from ringfence.audit.models import AuditRecord
from ringfence.store.database import Database

# fill() signs every this many records, as a server's checkpoint schedule would (audit/schedule.py).
CHECKPOINT_EVERY = 5
# With the migration record: the next start adopts the other tables and creates these again.
AUDIT_TABLES = ("ringfence_audit", "ringfence_audit_head", "ringfence_audit_checkpoints", "ringfence_alembic_version")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty audit log's database: a SQLite file, or the module's PostgreSQL database emptied."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'ringfence.db'}"
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(_drop_audit_tables(url))
    return url


async def _drop_audit_tables(url: str) -> None:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await connection.execute(f"DROP TABLE IF EXISTS {', '.join(AUDIT_TABLES)}")
    finally:
        await connection.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.close()


@pytest.fixture
def log(database: Database, data_dir: Path) -> AuditLog:
    return AuditLog(database, data_dir)


async def fill(log: AuditLog, count: int, **fields: Any) -> list[AuditRecord]:
    """Append ``count`` ordinary tool calls (fields override the defaults) and return them.

    As on a server: the checkpoint key exists, and each record whose number is a multiple of
    ``CHECKPOINT_EVERY`` is signed right after it is written.
    """
    CheckpointKey.load_or_create(log.data_dir)
    records = []
    for number in range(1, count + 1):
        values: dict[str, Any] = {"principal": f"user-{number % 2}", "tool": "search_contacts", "outcome": "ok",
                                  "latency_ms": 10.0 + number, "payload": {"query": f"grace {number}"}}  # fmt: skip
        values.update(fields)
        records.append(await log.append("tool.call", **values))
        if records[-1].seq % CHECKPOINT_EVERY == 0:
            await log.checkpoint()
    return records


async def sql(database: Database, statement: str, **parameters: Any) -> None:
    """Tamper as someone with write access to the database would: plain SQL, committed."""
    async with database.engine.begin() as connection:
        await connection.execute(text(statement), parameters)

