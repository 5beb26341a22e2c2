"""A real ``ringfence serve``: each audit record carries the request id of its answer and log lines and a
keyed hash of the host's session id (ChatGPT's ``openai/session``, else the ``Mcp-Session-Id``), and
``ringfence audit show`` finds a call's records by either."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import served_trusting
from tests.support.idp import TestIdentityProvider
from tests.support.oauth import ringfence_cli
from tests.support.serve import LEGACY_VERSION, ServeProcess


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("correlated")


@pytest.fixture(scope="module")
def server(idp: TestIdentityProvider, data_dir: Path) -> Iterator[ServeProcess]:
    with served_trusting(idp, data_dir) as served:  # the reference app
        yield served


def audit_show(data_dir: Path, *filters: str) -> list[dict[str, Any]]:
    done = ringfence_cli("audit", "show", "--data-dir", str(data_dir), *filters)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def log_lines_of(server: ServeProcess, request_id: str) -> list[dict[str, Any]]:
    """The JSON log lines of one request, once its access line (written after the answer) is there."""
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(text) for text in server.logs().splitlines() if text.startswith("{")]
        mine = [line for line in lines if line.get("request_id") == request_id]
        if any(line["logger"] == "uvicorn.access" for line in mine) or time.monotonic() > deadline:
            return mine
        time.sleep(0.05)


def test_a_call_s_record_carries_its_request_id_and_the_hashed_host_session(server: ServeProcess,
                                                                           data_dir: Path) -> None:
    response = server.call_tool("app_info", meta={"openai/session": "conv-7f3a9"},
                                headers={"x-request-id": "corr-call-1"})
    assert response.status_code == 200 and response.headers["x-request-id"] == "corr-call-1"
    records = audit_show(data_dir, "--request-id", "corr-call-1")
    assert [(record["kind"], record["tool"]) for record in records] == [("tool.call", "app_info")]
    digest = records[0]["session_hash"]
    assert digest is not None and "conv-7f3a9" not in json.dumps(records)
    assert [record["seq"] for record in audit_show(data_dir, "--session", "conv-7f3a9")] == [records[0]["seq"]]
    hashed = {line.get("host.openai/session") for line in log_lines_of(server, "corr-call-1")} - {None}
    assert hashed == {digest}, "the record's session hash is its log lines' host.openai/session"
    verified = ringfence_cli("audit", "verify", "--data-dir", str(data_dir))
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_handshake_session_s_records_are_found_by_its_mcp_session_id(server: ServeProcess,
                                                                      data_dir: Path) -> None:
    session = server.initialize().headers["mcp-session-id"]
    headers = {"mcp-session-id": session, "mcp-protocol-version": LEGACY_VERSION}
    server.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
    for number in (1, 2):
        call = {"jsonrpc": "2.0", "id": number, "method": "tools/call", "params": {"name": "app_info", "arguments": {}}}
        assert server.post(call, headers={**headers, "x-request-id": f"corr-session-{number}"}).status_code == 200
    records = audit_show(data_dir, "--session", session)
    assert [(record["request_id"], record["tool"]) for record in records] == [
        ("corr-session-1", "app_info"), ("corr-session-2", "app_info")]
    assert session not in json.dumps(records)


def test_a_refused_call_s_record_carries_its_request_id_too(server: ServeProcess, data_dir: Path) -> None:
    response = server.call_tool("search_contacts", {"query": "a"}, token="not-a-token",
                                headers={"x-request-id": "corr-refused-1"})
    assert response.status_code == 401
    records = audit_show(data_dir, "--request-id", "corr-refused-1")
    assert [(record["kind"], record["outcome"]) for record in records] == [("auth.failure", "invalid_token")]
