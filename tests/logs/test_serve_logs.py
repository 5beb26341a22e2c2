"""A real ``ringfence serve``: every stderr line is redacted JSON, every request has an ID in its lines and
its answer (never in a tool result), and host identifiers, arguments and tokens never reach the log raw."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import external_idp_args, serve_source
from tests.support.http import result_text, tool_result
from tests.support.idp import TestIdentityProvider
from tests.support.serve import LEGACY_VERSION, MODERN_VERSION, ServeProcess

LOGGED_APP = '''
from ringfence import App, Scope

app = App("ledger", scopes=[Scope("ledger:read", "Read your ledger")])


@app.tool(effect="read", scopes=["ledger:read"], log_arguments=["query"])
async def lookup(query: str, note: str = "") -> str:
    """Looks an entry up; its query is logged (redacted), its note never."""
    return "found 1 entry"


@app.tool(effect="read", scopes=["ledger:read"])
async def explode(query: str) -> str:
    """Fails with personal data in the exception."""
    raise RuntimeError(f"lookup of {query} failed")
'''

SUBJECT = "jane.doe@example.com"  # a subject that is itself personal data
QUERY_EMAIL = "max.mustermann@example.org"
NOTE_CARD = "4111 1111 1111 1111"
NOTE_PHONE = "+1 415 555 2671"
HOST_META = {"openai/session": "v1/sess-Q8kXz1", "openai/subject": "v1/subj-Lm30Zp",
             "openai/widgetSessionId": "ws-7HcK2a", "openai/locale": "en-GB"}
HEX_ID = re.compile(r"[0-9a-f]{32}")
FIRST_USER_NOTICE = "ringfence: NOTICE (not logged): created the first user"


@pytest.fixture(scope="module")
def ledger(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with serve_source(idp, tmp_path_factory, "ledger", LOGGED_APP) as server:
        yield server


@pytest.fixture(scope="module")
def token(ledger: ServeProcess, idp: TestIdentityProvider) -> str:
    return idp.token(ledger.mcp_url, sub=SUBJECT, scope="ledger:read")


def log_lines(server: ServeProcess) -> list[dict[str, Any]]:
    """Every line the server wrote to stderr, each parsed as JSON (failing on any that is not), except the
    first-user notice, printed once outside the log on purpose."""
    lines = []
    for number, text in enumerate(server.logs().splitlines(), 1):
        if text.startswith(FIRST_USER_NOTICE):
            continue
        try:
            lines.append(json.loads(text))
        except ValueError:
            pytest.fail(f"log line {number} is not JSON: {text[:300]!r}")
    return lines


def request_lines(server: ServeProcess, request_id: str) -> list[dict[str, Any]]:
    """The lines of one request, once its access line (written after the answer) is there."""
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in log_lines(server) if line.get("request_id") == request_id]
        if any(line["logger"] == "uvicorn.access" for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_a_tool_call_is_logged_as_json_under_its_request_id_without_raw_values(ledger: ServeProcess,
                                                                               token: str) -> None:
    response = ledger.call_tool("lookup", {"query": f"entries for {QUERY_EMAIL}", "note": f"{NOTE_CARD} {NOTE_PHONE}"},
                                token=token, meta=HOST_META, headers={"x-request-id": "chatgpt.req:0042-a"})
    result = tool_result(response)
    assert result_text(result) == "found 1 entry"
    assert response.headers["x-request-id"] == "chatgpt.req:0042-a", "a well-formed inbound ID is kept"
    assert "chatgpt.req:0042-a" not in response.text, "the request ID is never put into a tool result"

    lines = request_lines(ledger, "chatgpt.req:0042-a")
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert [(line["method"], line["path"], line["status"]) for line in access] == [("POST", "/mcp", 200)]
    hashed = {key: value for key, value in access[0].items() if key.startswith("host.")}
    assert set(hashed) == {f"host.{key}" for key in HOST_META}
    assert all(re.fullmatch(r"[0-9a-f]{16}", value) for value in hashed.values())

    logs = ledger.logs()
    for raw in (SUBJECT, QUERY_EMAIL, NOTE_CARD, NOTE_PHONE, token, *HOST_META.values()):
        assert raw not in logs, f"{raw!r} reached the log"


def test_an_opted_in_argument_is_logged_redacted_and_the_others_only_by_name_and_size(ledger: ServeProcess,
                                                                                     token: str) -> None:
    ledger.call_tool("lookup", {"query": f"entries for {QUERY_EMAIL}", "note": NOTE_CARD}, token=token,
                     headers={"x-request-id": "opt-in-1"})
    calls = [line for line in request_lines(ledger, "opt-in-1") if line.get("event") == "tool.call"]
    assert len(calls) == 1, "the tool.call security event is one log line"
    details = calls[0]["details"]
    assert calls[0]["tool"] == "lookup" and calls[0]["outcome"] == "ok"
    assert re.fullmatch(r"entries for \[EMAIL:[0-9a-f]{8}\]", details["arguments"]["query"])
    assert "note" not in details["arguments"], "a field not opted in is never logged"
    assert details["argument_fields"] == ["note", "query"]
    assert calls[0]["principal"] not in (SUBJECT, "(anonymous)") and re.fullmatch(r"[0-9a-f]{16}",
                                                                                   calls[0]["principal"])


def test_calls_in_a_handshake_session_carry_their_own_request_ids(ledger: ServeProcess, token: str) -> None:
    """2025-11-25 sessions: the SDK runs a session's calls in one long-lived task, yet each call's lines
    carry the ID of the request that made it, not the one that opened the session."""
    session = ledger.initialize(token=token).headers["mcp-session-id"]
    headers = {"mcp-session-id": session, "mcp-protocol-version": LEGACY_VERSION}
    ledger.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, token=token, headers=headers)
    for number in (1, 2):
        call = {"jsonrpc": "2.0", "id": number, "method": "tools/call",
                "params": {"name": "lookup", "arguments": {"query": "q"}}}
        response = ledger.post(call, token=token, headers={**headers, "x-request-id": f"session-call-{number}"})
        assert response.status_code == 200
    for number in (1, 2):
        events = [line["event"] for line in request_lines(ledger, f"session-call-{number}") if "event" in line]
        assert events == ["tool.call"]


def test_an_exception_in_a_tool_is_logged_with_a_redacted_traceback(ledger: ServeProcess, token: str) -> None:
    response = ledger.call_tool("explode", {"query": QUERY_EMAIL}, token=token, headers={"x-request-id": "boom-1"})
    assert tool_result(response)["isError"] is True
    failures = [line for line in request_lines(ledger, "boom-1") if "exception" in line]
    assert failures, "the failure is logged on the lines of its request"
    exception = failures[0]["exception"]
    assert exception["type"] == "RuntimeError"
    assert re.fullmatch(r"lookup of \[EMAIL:[0-9a-f]{8}\] failed", exception["message"])
    assert "Traceback (most recent call last)" in exception["traceback"]
    assert QUERY_EMAIL not in ledger.logs()


def test_undecodable_and_huge_argument_values_give_a_clear_answer_and_valid_lines(ledger: ServeProcess,
                                                                                   token: str) -> None:
    """A lone surrogate (``\\ud800`` in the JSON) in a long value: refused by name, recorded, valid lines."""
    arguments = {"query": "ok", "note": "\udcff\ud800 " + "z " * 4_000}
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
            "io.modelcontextprotocol/clientInfo": {"name": "ringfence-tests", "version": "0"},
            "io.modelcontextprotocol/clientCapabilities": {}}
    message = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
               "params": {"name": "lookup", "arguments": arguments, "_meta": meta}}
    response = ledger.post(None, token=token, content=json.dumps(message).encode(),  # ASCII, with \u escapes
                           headers={"x-request-id": "surrogate-1", "mcp-protocol-version": MODERN_VERSION,
                                    "mcp-method": "tools/call", "mcp-name": "lookup"})
    assert response.status_code == 200
    assert result_text(tool_result(response)) == "Invalid argument note: is not valid Unicode text"
    calls = [line for line in request_lines(ledger, "surrogate-1") if line.get("event") == "tool.call"]
    assert [call["outcome"] for call in calls] == ["invalid"]
    assert calls[0]["details"] == {"field": "note", "rule": "is not valid Unicode text"}


MALFORMED_IDS = {
    "too long": "a" * 129,
    "space and angle brackets": "<script> alert",
    "encoded CRLF": "id%0D%0AX-Injected:%201",
    "latin-1 bytes": b"caf\xe9-42",
    "a card number": "4111111111111111",
    "an IP address": "10.20.30.40",
    "empty": "",
}


@pytest.mark.parametrize("inbound", MALFORMED_IDS.values(), ids=MALFORMED_IDS.keys())
def test_a_malformed_inbound_request_id_is_replaced_by_a_fresh_one(ledger: ServeProcess, inbound: str | bytes) -> None:
    response = httpx.get(ledger.metadata_url, headers={"x-request-id": inbound}, timeout=10)
    assert response.status_code == 200
    fresh = response.headers["x-request-id"]
    assert HEX_ID.fullmatch(fresh)
    assert [line["path"] for line in request_lines(ledger, fresh) if line["logger"] == "uvicorn.access"] == [
        "/.well-known/oauth-protected-resource/mcp"]
    text = inbound.decode("latin-1") if isinstance(inbound, bytes) else inbound
    if text:
        assert text not in ledger.logs()


def test_two_inbound_request_ids_are_replaced_by_one_fresh_one(ledger: ServeProcess) -> None:
    response = httpx.get(ledger.metadata_url, headers=[("x-request-id", "first-1"), ("x-request-id", "second-2")],
                         timeout=10)
    assert HEX_ID.fullmatch(response.headers["x-request-id"])
    assert response.headers.get_list("x-request-id") == [response.headers["x-request-id"]]


def test_each_request_gets_its_own_id(ledger: ServeProcess) -> None:
    first, second = (httpx.get(ledger.metadata_url, timeout=10).headers["x-request-id"] for _ in range(2))
    assert HEX_ID.fullmatch(first) and HEX_ID.fullmatch(second) and first != second


def test_a_refusal_before_routing_carries_a_request_id_too(ledger: ServeProcess, token: str) -> None:
    """The request-ID middleware is outermost: a 421 for a foreign Host header (DNS rebinding) has one."""
    response = httpx.post(ledger.mcp_url, headers={"host": "attacker.example", "x-request-id": "rebind-1",
                                                   "authorization": f"Bearer {token}"}, json={}, timeout=10)
    assert response.status_code == 421 and response.headers["x-request-id"] == "rebind-1"
    assert [line["status"] for line in request_lines(ledger, "rebind-1") if line["logger"] == "uvicorn.access"] == [421]


def test_a_refused_token_in_the_query_string_never_reaches_the_log(ledger: ServeProcess, token: str) -> None:
    response = httpx.post(f"{ledger.mcp_url}?access_token={token}", headers={"x-request-id": "query-token-1"},
                          json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, timeout=10)
    assert response.status_code == 400
    access = [line for line in request_lines(ledger, "query-token-1") if line["logger"] == "uvicorn.access"]
    assert [(line["path"], line["status"]) for line in access] == [("/mcp", 400)]
    assert token not in ledger.logs() and "access_token" not in ledger.logs()


def test_every_line_of_the_server_is_json_with_the_fixed_fields(ledger: ServeProcess) -> None:
    lines = log_lines(ledger)
    assert any(line["logger"] == "uvicorn.error" and "Application startup complete" in line["message"]
               for line in lines), "uvicorn's own lines go through the pipeline"
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)


def test_text_format_and_log_file_with_private_rotation(idp: TestIdentityProvider, tmp_path: Path) -> None:
    (tmp_path / "ledger_app.py").write_text(LOGGED_APP)
    args, env = external_idp_args(idp)
    log_file = tmp_path / "logs" / "ringfence.log"
    server = ServeProcess(str(tmp_path / "ledger_app.py"), *args, "--data-dir", str(tmp_path), "--log-format", "text",
                          "--log-file", str(log_file), env={**env, "RINGFENCE_LOG_RETENTION_DAYS": "7"}).start(tmp_path)
    try:
        token = idp.token(server.mcp_url, sub=SUBJECT, scope="ledger:read")
        response = server.call_tool("lookup", {"query": QUERY_EMAIL}, token=token, headers={"x-request-id": "txt-1"})
        assert response.status_code == 200
        deadline = time.monotonic() + 10
        while "[txt-1]" not in log_file.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.stop()
    written = log_file.read_text()
    assert re.search(r"^\S+Z INFO +uvicorn\.access \[txt-1\] .*\"POST /mcp HTTP/1\.1\" 200", written, re.M)
    assert QUERY_EMAIL not in written and QUERY_EMAIL not in server.logs() and token not in written
    assert log_file.stat().st_mode & 0o777 == 0o600, "the log file is readable by its owner only"


@pytest.mark.parametrize(("option", "value", "problem"), [
    ("--log-format", "xml", "log_format"),
    ("--log-level", "chatty", "invalid log level"),
    ("--log-retention-days", "0", "log_retention_days"),
])  # fmt: skip
def test_bad_logging_options_stop_start_up_with_one_line(tmp_path: Path, option: str, value: str,
                                                         problem: str) -> None:
    from tests.support.oauth import ringfence_cli
    from tests.support.serve import CONTACTS_APP

    done = ringfence_cli("serve", CONTACTS_APP, "--data-dir", str(tmp_path), option, value)
    assert done.returncode == 2
    assert done.stderr.startswith("ringfence: error: ") and problem in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unwritable_log_file_stops_start_up_with_one_line(tmp_path: Path) -> None:
    from tests.support.oauth import ringfence_cli
    from tests.support.serve import CONTACTS_APP

    (tmp_path / "a-file").write_text("")
    done = ringfence_cli("serve", CONTACTS_APP, "--data-dir", str(tmp_path), "--log-file",
                         str(tmp_path / "a-file" / "ringfence.log"))
    assert done.returncode == 2
    assert done.stderr.startswith("ringfence: error: cannot write the log file") and "Traceback" not in done.stderr


def test_the_first_users_password_is_shown_once_on_stderr_and_never_logged(tmp_path: Path) -> None:
    """The quick start's one plain notice; every other line is JSON, and none of them holds the password."""
    from tests.support.oauth import start_embedded

    server = start_embedded(tmp_path)  # reads the account from the notice, as a user would
    try:
        response = httpx.get(f"{server.issuer}/.well-known/oauth-authorization-server",
                             headers={"x-request-id": "as-meta-1"}, timeout=10)
        assert response.headers["x-request-id"] == "as-meta-1"
    finally:
        server.stop()
    lines = server.logs().splitlines()
    notices = [line for line in lines if line.startswith(FIRST_USER_NOTICE)]
    assert len(notices) == 1 and server.account.password in notices[0]
    logged = [json.loads(line) for line in lines if line not in notices]
    assert all(server.account.password not in json.dumps(line) for line in logged)
    assert any(line["message"].startswith("created the first user") for line in logged)


def test_the_standalone_authorization_server_tags_answers_and_lines_with_request_ids(tmp_path: Path) -> None:
    from tests.support.oauth import start_auth_server

    auth = start_auth_server(tmp_path, resource="http://127.0.0.1:9/mcp")
    try:
        response = httpx.get(f"{auth.issuer}/.well-known/oauth-authorization-server",
                             headers={"x-request-id": "standalone-1"}, timeout=10)
        assert response.status_code == 200 and response.headers["x-request-id"] == "standalone-1"
        assert request_lines(auth.process, "standalone-1")[-1]["status"] == 200
    finally:
        auth.stop()
