"""The tool wrapper: author errors reach the user, unexpected ones only the server log; sync tools see the caller."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import serve_source
from tests.support.http import assert_no_internals, result_text, tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.serve import ServeProcess

NOTES_APP = '''
from ringfence import App, Scope, ToolError, current_principal, optional_principal

app = App("notes", scopes=[Scope("notes:read", "Read your notes")])


@app.tool(effect="read")
async def explode() -> str:
    """Fails in a way the author did not foresee."""
    raise RuntimeError(f"connection to postgres://admin:hunter2@db.internal failed in {__file__}")


@app.tool(effect="read")
async def locked() -> str:
    """Refuses with a message meant for the user."""
    raise ToolError("That notebook is locked by its owner.")


@app.tool(effect="read", scopes=["notes:read"])
def whoami_sync() -> str:
    """A plain (sync) function: run in a worker thread, still seeing the verified caller."""
    return current_principal().subject


@app.tool(effect="read")
async def maybe_me() -> str:
    """A public tool: the caller is optional."""
    caller = optional_principal()
    return caller.subject if caller else "anonymous"
'''


@pytest.fixture(scope="module")
def notes(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with serve_source(idp, tmp_path_factory, "notes", NOTES_APP) as server:
        yield server


def test_unexpected_exception_becomes_a_generic_error_result(notes: ServeProcess) -> None:
    """OWASP error handling: the caller learns the tool failed, not the secret or the file in the exception."""
    response = notes.call_tool("explode")
    result = tool_result(response)
    assert result["isError"] is True
    assert result_text(result) == "explode failed unexpectedly. The server has logged the details."
    assert "hunter2" not in response.text
    assert_no_internals(response)


def test_unexpected_exception_is_logged_on_the_server_with_its_detail(notes: ServeProcess) -> None:
    """The operator still gets what the caller does not: the traceback, in the server log."""
    notes.call_tool("explode")
    log = notes.logs()
    assert "tool explode failed" in log
    assert "Traceback" in log
    assert "RuntimeError" in log


def test_tool_error_message_is_shown_to_the_user(notes: ServeProcess) -> None:
    """``raise ToolError(...)``: the one way an author sends an error message to the user."""
    result = tool_result(notes.call_tool("locked"))
    assert result["isError"] is True
    assert result_text(result) == "That notebook is locked by its owner."


def test_sync_tool_runs_as_the_verified_caller(notes: ServeProcess, idp: TestIdentityProvider) -> None:
    """The principal reaches a sync tool running in a worker thread."""
    subject = new_subject()
    token = idp.token(notes.mcp_url, sub=subject, scope="notes:read")
    result = tool_result(notes.call_tool("whoami_sync", token=token))
    assert result["isError"] is False
    assert result["structuredContent"]["result"] == subject


def test_public_tool_sees_an_optional_caller(notes: ServeProcess, idp: TestIdentityProvider) -> None:
    """``optional_principal()``: the verified caller when a token was sent, ``None`` otherwise."""
    subject = new_subject()
    signed_in = tool_result(notes.call_tool("maybe_me", token=idp.token(notes.mcp_url, sub=subject)))
    anonymous = tool_result(notes.call_tool("maybe_me"))
    assert signed_in["structuredContent"]["result"] == subject
    assert anonymous["structuredContent"]["result"] == "anonymous"
