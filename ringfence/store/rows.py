"""Deleting, or counting, the rows of one table that match conditions: the purge's one statement."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select

from ringfence.store.database import Database


async def delete_rows(database: Database, table: type, conditions: list[Any], *, dry_run: bool = False) -> int:
    """Delete the rows of ``table`` matching all ``conditions`` (with ``dry_run``, only count them)."""
    async with database.session() as session:
        if dry_run:
            return int(await session.scalar(select(func.count()).select_from(table).where(*conditions)) or 0)
        result = await session.execute(delete(table).where(*conditions))
        return int(result.rowcount or 0)
