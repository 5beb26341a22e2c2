"""The audit trail of a running server: every tool call, auth failure and scope refusal is recorded.

Issue #5 item 5 lists what is audited; records go through ``ringfence.events.Events`` from the
gate and the tool wrapper, with payloads redacted (no argument values, keyed pseudonyms).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import external_idp_args
from tests.support.http import tool_result
from tests.support.idp import TestIdentityProvider
from tests.support.serve import CONTACTS_APP, REPO, ServeProcess, server_env


@pytest.fixture(scope="module")
def audited(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    data = tmp_path_factory.mktemp("audited")
    args, env = external_idp_args(idp)
    server = ServeProcess(CONTACTS_APP, *args, "--data-dir", str(data), env=env).start(data)
    server.data_dir = data  # type: ignore[attr-defined]
    yield server
    server.stop()


def audit(server: ServeProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ringfence", "audit", *args, "--data-dir", str(server.data_dir)],  # type: ignore[attr-defined]
        capture_output=True, text=True, cwd=REPO, env=server_env(), timeout=60, check=False,
    )


def records(server: ServeProcess, *filters: str) -> list[dict]:
    shown = audit(server, "show", *filters)
    assert shown.returncode == 0, shown.stderr
    return [json.loads(line) for line in shown.stdout.splitlines()]


def test_every_tool_call_is_recorded_with_outcome_latency_and_no_argument_values(
    audited: ServeProcess, idp: TestIdentityProvider
) -> None:
    token = idp.token(audited.mcp_url, sub="auditor-1", scope="contacts:write")
    secret_name = "Grace Hopper grace.hopper@example.org"
    added = tool_result(audited.call_tool("add_contact", {"name": secret_name}, token=token))
    assert not added.get("isError")

    calls = records(audited, "--kind", "tool.call", "--principal", "auditor-1", "--tool", "add_contact")
    assert len(calls) == 1
    call = calls[0]
    assert call["outcome"] == "ok"
    assert call["latency_ms"] is not None and call["latency_ms"] >= 0
    payload = call["payload"]
    assert payload["effect"] == "write"
    assert payload["argument_fields"] == ["email", "name", "phone"]  # as the tool received them, defaults too
    assert payload["argument_bytes"]["name"] == len(json.dumps(secret_name).encode())
    assert len(payload["arguments_hash"]) == 32
    everything = audit(audited, "show").stdout
    assert "grace.hopper" not in everything and "Grace Hopper" not in everything


def test_equal_arguments_give_equal_hashes_so_records_can_be_joined(
    audited: ServeProcess, idp: TestIdentityProvider
) -> None:
    token = idp.token(audited.mcp_url, sub="auditor-2", scope="contacts:read")
    for query in ("needle", "needle", "other"):
        audited.call_tool("search_contacts", {"query": query}, token=token)
    hashes = [r["payload"]["arguments_hash"] for r in records(audited, "--principal", "auditor-2")]
    assert hashes[0] == hashes[1] != hashes[2]


def test_a_bad_token_is_recorded_as_an_authentication_failure(audited: ServeProcess,
                                                              idp: TestIdentityProvider) -> None:
    forged = idp.token(audited.mcp_url, key=idp.unpublished, sub="intruder", scope="contacts:read")
    assert audited.call_tool("search_contacts", {"query": "x"}, token=forged).status_code == 401
    failures = records(audited, "--kind", "auth.failure", "--outcome", "invalid_token")
    assert failures
    assert failures[-1]["principal"] == "(anonymous)"  # an unverified token names nobody
    assert failures[-1]["payload"]["stage"] == "resource"
    assert failures[-1]["payload"]["address"] == "127.0.0.1"  # loopback names no one; others are pseudonyms


def test_a_missing_scope_is_recorded_as_a_scope_refusal_and_the_tool_never_runs(
    audited: ServeProcess, idp: TestIdentityProvider
) -> None:
    token = idp.token(audited.mcp_url, sub="auditor-3", scope="contacts:read")
    assert audited.call_tool("add_contact", {"name": "Nobody"}, token=token).status_code == 403
    refused = records(audited, "--kind", "scope.refused", "--principal", "auditor-3")
    assert [r["outcome"] for r in refused] == ["insufficient_scope"]
    assert refused[0]["tool"] == "add_contact"
    assert refused[0]["payload"]["required"] == ["contacts:write"]
    assert records(audited, "--kind", "tool.call", "--principal", "auditor-3") == []


def test_arguments_refused_by_screening_are_recorded_as_an_invalid_call(
    audited: ServeProcess, idp: TestIdentityProvider
) -> None:
    token = idp.token(audited.mcp_url, sub="auditor-4", scope="contacts:read")
    response = audited.call_tool("search_contacts", {"query": "x", "extra": "ada@example.org"}, token=token)
    assert tool_result(response)["isError"] is True
    invalid = records(audited, "--kind", "tool.call", "--principal", "auditor-4")
    assert [r["outcome"] for r in invalid] == ["invalid"]
    assert "ada@example.org" not in json.dumps(invalid)


def test_the_chain_of_a_running_server_verifies(audited: ServeProcess, idp: TestIdentityProvider) -> None:
    token = idp.token(audited.mcp_url, sub="auditor-5", scope="contacts:read")
    for _ in range(3):
        audited.call_tool("search_contacts", {"query": "y"}, token=token)
    verified = audit(audited, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_call_that_cannot_be_recorded_is_not_answered_as_done(tmp_path: Path, idp: TestIdentityProvider) -> None:
    """Fail closed: with the audit table unwritable, the caller gets an error, not the tool's result."""
    import sqlite3

    args, env = external_idp_args(idp)
    server = ServeProcess(CONTACTS_APP, *args, "--data-dir", str(tmp_path), env=env).start(tmp_path)
    try:
        token = idp.token(server.mcp_url, sub="auditor-6", scope="contacts:read")
        assert not tool_result(server.call_tool("search_contacts", {"query": "a"}, token=token)).get("isError")
        with sqlite3.connect(tmp_path / "ringfence.db") as connection:  # sabotage: appends now fail
            connection.execute("CREATE TRIGGER no_audit BEFORE INSERT ON ringfence_audit "
                               "BEGIN SELECT RAISE(ABORT, 'audit disabled'); END")
        result = tool_result(server.call_tool("search_contacts", {"query": "a"}, token=token))
        assert result["isError"] is True
        assert "could not be recorded" in result["content"][0]["text"]
        assert "audit disabled" not in json.dumps(result)  # no internal detail
    finally:
        server.stop()


def test_payloads_keep_personal_data_only_as_keyed_pseudonyms(tmp_path: Path) -> None:
    """Issue #5: audit payloads are redacted; equal values give equal pseudonyms, so records still join."""
    import asyncio

    from ringfence.audit.log import AuditLog
    from ringfence.events import Events, SecurityEvent
    from ringfence.store.database import Database

    async def record_two() -> list[dict]:
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}")
        await database.start()
        try:
            log = AuditLog(database, tmp_path)
            events = Events(log, b"k" * 32)
            for _ in range(2):
                await events.record(SecurityEvent("auth.failure", "login_failed", address="203.0.113.9",
                                                  details={"note": "from ada@example.org"}))
            return [record.payload async for record in log.query()]
        finally:
            await database.close()

    first, second = asyncio.run(record_two())
    assert "203.0.113.9" not in json.dumps(first) and "ada@example.org" not in json.dumps(first)
    assert first == second and first["address"].startswith("[IP:")
