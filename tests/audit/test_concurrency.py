"""Concurrent writers, in tasks and in OS processes, make one gap-free chain that verifies."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import threading
from collections import Counter
from pathlib import Path

import pytest

from ringfence.audit.log import AuditLog
from ringfence.audit.schedule import CheckpointSchedule
from ringfence.store.database import Database
from tests.audit.writers import append_from_tasks


def run_writer_processes(url: str, data_dir: Path, processes: int, tasks: int, each: int) -> None:
    context = multiprocessing.get_context("spawn")  # a clean interpreter, as separate servers would be
    start = context.Barrier(processes)
    writers = [
        context.Process(target=append_from_tasks, args=(url, str(data_dir), f"process-{n}", tasks, each, start))
        for n in range(processes)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    for writer in writers:
        if writer.is_alive():
            writer.kill()
    assert [writer.exitcode for writer in writers] == [0] * processes


async def check_one_chain(url: str, data_dir: Path, writers: int, each_writer: int, *,
                          interleaved: bool = True) -> None:  # fmt: skip
    database = Database(url)
    try:
        log = AuditLog(database, data_dir)
        report = await log.verify()
        records = [record async for record in log.query()]
    finally:
        await database.close()
    assert report.ok, report.summary()
    assert [r.seq for r in records] == list(range(1, writers * each_writer + 1))
    assert Counter(r.principal for r in records) == {f"process-{n}": each_writer for n in range(writers)}
    if interleaved:
        switches = sum(a.principal != b.principal for a, b in itertools.pairwise(records))
        assert switches > writers, "the writers did not run at the same time"


async def prepare(url: str, data_dir: Path) -> None:
    """Create the tables and the key before the writers start, as the server's start-up would."""
    database = Database(url)
    try:
        await database.start()
        await AuditLog(database, data_dir)._ensure_ready()
    finally:
        await database.close()


@pytest.mark.postgres
def test_four_processes_appending_at_once_on_postgresql_make_one_chain(postgres_url: str, tmp_path: Path) -> None:
    """4 processes x 2 tasks x 40 appends against one database: the chain head row lock serializes them."""
    asyncio.run(prepare(postgres_url, tmp_path))
    run_writer_processes(postgres_url, tmp_path, processes=4, tasks=2, each=40)
    asyncio.run(check_one_chain(postgres_url, tmp_path, writers=4, each_writer=80))


def test_three_processes_appending_at_once_on_sqlite_make_one_chain(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE takes SQLite's write lock before the head is read, across processes too.

    (Whether the processes interleave is up to SQLite's busy handler, which is not fair: one
    process may do all its appends while the others wait. Only the chain is checked.)"""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ringfence.db'}"
    asyncio.run(prepare(url, tmp_path))
    run_writer_processes(url, tmp_path, processes=3, tasks=2, each=10)
    asyncio.run(check_one_chain(url, tmp_path, writers=3, each_writer=20, interleaved=False))


@pytest.mark.anyio
async def test_log_instances_taking_turns_make_one_chain(database: Database, data_dir: Path) -> None:
    """Each finds the head moved by the other since its own last append (on PostgreSQL, where a log
    remembers the head it wrote, its append then reads the head under the lock), with a checkpoint
    schedule signing meanwhile."""
    logs = [AuditLog(database, data_dir), AuditLog(database, data_dir)]
    schedule = CheckpointSchedule(logs[0], every=2, interval=3600)
    schedule.start()
    try:
        records = [await logs[number % 2].append("tool.call", principal=f"log-{number % 2}", outcome="ok",
                                                  payload={"n": number}) for number in range(12)]  # fmt: skip
    finally:
        await schedule.stop()
    report = await logs[0].verify()
    assert [record.seq for record in records] == list(range(1, 13))
    assert report.ok and report.checkpoint_seq == 12, report.summary()


@pytest.mark.anyio
async def test_concurrent_tasks_and_log_instances_on_sqlite_make_one_chain(tmp_path: Path) -> None:
    """Two AuditLog objects (two asyncio locks) on one database, each with four tasks.

    (Whether the two interleave is up to SQLite's busy handler, so only the chain is checked.)
    """
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'ringfence.db'}")
    logs = [AuditLog(database, tmp_path), AuditLog(database, tmp_path)]

    async def task(log: AuditLog, name: str) -> None:
        for index in range(15):
            await log.append("tool.call", principal=name, outcome="ok", payload={"index": index})

    try:
        await asyncio.gather(*(task(log, f"process-{n}") for n, log in enumerate(logs) for _ in range(4)))
    finally:
        await database.close()
    await check_one_chain(f"sqlite+aiosqlite:///{tmp_path / 'ringfence.db'}", tmp_path, writers=2, each_writer=60,
                          interleaved=False)


@pytest.mark.anyio
async def test_an_append_waits_in_a_worker_thread_while_another_thread_has_the_sqlite_connection(
        tmp_path: Path) -> None:
    """The appends' SQLite connection (Database.sqlite_connection) goes to one thread at a time: an
    append that finds it taken is not made on the event loop, which goes on serving, but waits for
    it in a worker thread, and is committed once the connection is free."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'ringfence.db'}")
    log = AuditLog(database, tmp_path)
    try:
        await log.append("tool.call", principal="first", outcome="ok")
        taken, release = threading.Event(), threading.Event()

        def hold() -> None:
            with database.sqlite_connection() as connection:
                assert connection is not None
                taken.set()
                release.wait(10)

        holder = asyncio.ensure_future(asyncio.to_thread(hold))
        await asyncio.to_thread(taken.wait, 10)
        append = asyncio.ensure_future(log.append("tool.call", principal="second", outcome="ok"))
        ticks = 0
        while ticks < 20:  # the loop is free while the append waits
            await asyncio.sleep(0.005)
            ticks += 1
        assert not append.done()
        release.set()
        record = await asyncio.wait_for(append, 10)
        await holder
        assert record.seq == 2
        assert (await log.verify()).ok
    finally:
        await database.close()
