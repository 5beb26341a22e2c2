"""SIGKILL in the middle of a burst of audited calls loses no acknowledged record (issue #5, item 6).

Sixteen clients add notes concurrently; once some calls have been answered the server is killed
with SIGKILL (no shutdown, no flush). After a restart on the same data: every call whose answer
was fully received has its note and a ``tool.call`` record with outcome ``ok`` (each call's record
is committed before its answer is sent), ``ringfence audit verify`` passes, and the chain goes on
from where it stopped.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import external_idp_args
from tests.support.http import tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.instances import NOTES_APP, Caller, audit_verify, audited_calls, notes, sqlite_url
from tests.support.serve import ServeProcess

CLIENTS = 16
CALLS_EACH = 30
KILL_AFTER = 120  # acknowledged calls


def serve(idp: TestIdentityProvider, data: Path, database_url: str | None, log_dir: Path) -> ServeProcess:
    args, env = external_idp_args(idp, introspection=False)
    database = ["--database-url", database_url] if database_url else []
    return ServeProcess(NOTES_APP, *args, "--data-dir", str(data), *database, env=env).start(log_dir)


def burst_then_kill(server: ServeProcess, idp: TestIdentityProvider) -> tuple[list[Caller], int]:
    """Run the burst, SIGKILL the server once ``KILL_AFTER`` calls were answered; the callers and that count."""
    callers = []
    for _ in range(CLIENTS):
        subject = new_subject()
        callers.append(Caller(subject, idp.token(server.mcp_url, sub=subject, scope="notes:write"), [server.mcp_url]))
    killed_after: list[int] = []

    def acknowledged() -> int:
        return sum(len(caller.acknowledged()) for caller in callers)

    async def kill() -> None:
        while acknowledged() < KILL_AFTER:
            await asyncio.sleep(0.005)
        assert server.process is not None
        server.process.kill()
        killed_after.append(acknowledged())

    async def burst() -> None:
        await asyncio.gather(kill(), *(caller.add_notes(CALLS_EACH) for caller in callers))

    asyncio.run(burst())
    assert server.process is not None and server.process.wait(timeout=10) == -9
    return callers, killed_after[0]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "data")
    return request.getfixturevalue("postgres_url")


def test_sigkill_mid_burst_loses_no_acknowledged_audit_record(idp, tmp_path: Path, database: str):
    data = tmp_path / "data"
    explicit = None if database.startswith("sqlite") else database
    server = serve(idp, data, explicit, tmp_path)
    try:
        callers, killed_after = burst_then_kill(server, idp)
    finally:
        server.stop()
    acknowledged = {caller.name: caller.acknowledged() for caller in callers}
    assert KILL_AFTER <= killed_after < CLIENTS * CALLS_EACH  # killed mid-burst, not after it
    assert all(outcome.status in (200, None) for caller in callers for _, outcome in caller.outcomes)

    restarted = serve(idp, data, explicit, tmp_path)  # same data, a new port (and a new log file)
    try:
        audited = audited_calls(database, data)
        stored = notes(database)
        for subject, answered in acknowledged.items():
            assert audited[subject] >= len(answered), f"{subject}: {audited[subject]} records, {len(answered)} answered"
            assert set(answered) <= stored

        after = callers[0]  # the chain goes on after the crash
        token = idp.token(restarted.mcp_url, sub=after.name, scope="notes:write")
        added = restarted.call_tool("add_note", {"text": "after the crash"}, token=token)
        assert tool_result(added)["isError"] is False
        assert audited_calls(database, data)[after.name] == audited[after.name] + 1
        # Every record, from before the crash and after it, on one chain with its checkpoints.
        assert audit_verify(database, data).startswith("audit log intact: records #1 to #")
    finally:
        restarted.stop()
