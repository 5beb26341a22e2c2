"""A writer process for the concurrency tests: appends to one audit log from several tasks."""

from __future__ import annotations

import asyncio
from multiprocessing.synchronize import Barrier
from pathlib import Path

from ringfence.audit.log import AuditLog
from ringfence.store.database import Database


def append_from_tasks(url: str, data_dir: str, name: str, tasks: int, each: int, start: Barrier) -> None:
    """Connect, wait for the other writers, then append ``tasks * each`` records as principal ``name``."""
    asyncio.run(_append_from_tasks(url, Path(data_dir), name, tasks, each, start))


async def _append_from_tasks(url: str, data_dir: Path, name: str, tasks: int, each: int, start: Barrier) -> None:
    database = Database(url)
    log = AuditLog(database, data_dir)

    async def task(number: int) -> None:
        for index in range(each):
            await log.append("tool.call", principal=name, tool="search", outcome="ok",
                             payload={"task": number, "index": index})  # fmt: skip

    try:
        await database.start()  # connected, with what it imports on first use, before the others are waited for
        await asyncio.to_thread(start.wait)
        await asyncio.gather(*(task(number) for number in range(tasks)))
    finally:
        await database.close()
