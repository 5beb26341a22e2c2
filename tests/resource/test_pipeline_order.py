"""The order of the /mcp path, in-process: authorization before anything of the author's, before the
budget, before the session and before the arguments.

McpGate decides in this order: authenticate, authorize, admit the session, spend the budget, screen
the arguments; only then does the MCP SDK see the call. The SDK runs a destructive tool's
confirmation resolver (the author's ``preview=``, then an elicitation) before the tool wrapper, so
authorization must come before the SDK. The issue this pins: in the tool-result refusal style a
caller holding only the read scope was shown "Confirm: delete your contact ..." and refused only
after accepting, and an anonymous caller made the author's preview look up a record. Every case runs
for every kind of client (each refusal style; ChatGPT under auto) in both protocol eras.
"""

from __future__ import annotations

import pytest

from tests.support.http import tool_result
from tests.support.idp import TestIdentityProvider
from tests.support.inprocess import (
    RAN,
    Client,
    Era,
    Servers,
    auth_refusal,
    result_challenge,
    server_requests,
    spend_budget,
    token_for,
)


@pytest.fixture(autouse=True)
def nothing_ran_yet() -> None:
    RAN.clear()


def test_reader_calling_a_destructive_tool_in_tool_result_style_runs_no_preview_and_gets_insufficient_scope(
        servers: Servers, idp: TestIdentityProvider) -> None:
    """The issue's case: a handshake-era client that declared elicitation, tool-result style, a reader.

    Here the SDK would run the confirmation resolver (the preview, then ``elicitation/create``
    "Confirm: delete note 1") before the tool wrapper. This test fails if authorization moves after
    the SDK: against a copy of ringfence whose McpGate.authorize does nothing (the wrapper's check
    left alone) and whose resolver does not check the gate's decision, the preview runs and the
    server asks the reader to confirm (RAN == ["preview"], one elicitation/create in the stream).
    """
    client = Client(servers["tool-result"], "handshake").eliciting()
    reader = token_for(idp, "notes:read")
    session = client.open_session(reader)  # initialize declared {"elicitation": {"form": {}}}
    response = client.call_tool("delete_note", {"note_id": 1}, token=reader, session=session)
    assert server_requests(response) == []  # no elicitation/create: the answer is the refusal itself
    assert RAN == []
    params = result_challenge(tool_result(response))
    assert (params["error"], params["scope"]) == ("insufficient_scope", "notes:read notes:write")


@pytest.mark.parametrize("era", ["modern", "handshake"])
def test_a_writer_from_an_eliciting_client_is_asked_to_confirm(servers: Servers,
                                                               idp: TestIdentityProvider, era: Era) -> None:
    """The control for the "no question" assertions here: with the scope, the same call runs the preview
    and asks the user (``elicitation/create`` mid-call in the handshake era, ``input_required`` in the modern)."""
    client, writer = Client(servers["tool-result"], era).eliciting(), token_for(idp, "notes:write")
    session = client.open_session(writer)
    response = client.call_tool("delete_note", {"note_id": 1}, token=writer, session=session)
    if session is not None:
        [question] = server_requests(response)
        client.close_session(session, writer)  # the call waits for an answer that will not come: end it
    else:
        [question] = tool_result(response)["inputRequests"].values()
    assert question["method"] == "elicitation/create" and question["params"]["message"].endswith("\n> delete note 1")
    assert RAN == ["preview"]


@pytest.mark.parametrize("elicitation", [False, True], ids=["plain", "eliciting"])
@pytest.mark.parametrize("caller", ["anonymous", "reader"])
def test_a_caller_without_the_scope_of_a_destructive_tool_sees_no_preview_and_no_question(
        client: Client, idp: TestIdentityProvider, caller: str, elicitation: bool) -> None:
    """No preview, no elicitation (a question mid-call in the handshake era, ``input_required`` in the
    modern one), no author code before authorization: the answer is the 401/403 refusal, nothing else."""
    client = client.eliciting() if elicitation else client
    token = token_for(idp, "notes:read") if caller == "reader" else None
    response = client.call_tool("delete_note", {"note_id": 1}, token=token)
    params = auth_refusal(client, response, 403 if token else 401)
    assert params["scope"] == ("notes:read notes:write" if token else "notes:write")
    assert "inputRequests" not in response.text
    assert RAN == []


def test_a_caller_without_scope_gets_the_scope_refusal_not_429_when_the_budget_is_spent(
        client: Client, idp: TestIdentityProvider) -> None:
    """Authorize before spending: an unauthorized call neither spends a budget nor learns of one."""
    spend_budget(client, "count_notes", token_for(idp, "notes:read"))
    refused = client.call_tool("count_notes", token=token_for(idp, "profile"))
    assert auth_refusal(client, refused, 403)["error"] == "insufficient_scope"
    assert auth_refusal(client, client.call_tool("count_notes"), 401)["scope"] == "notes:read"


@pytest.mark.parametrize("caller", ["anonymous", "reader"])
def test_a_caller_without_scope_and_with_invalid_arguments_gets_the_scope_refusal(
        client: Client, idp: TestIdentityProvider, caller: str) -> None:
    """Authorize before screening: the arguments of a call that may not be made are not judged."""
    token = token_for(idp, "notes:read") if caller == "reader" else None
    response = client.call_tool("write_note", {"text": 5, "as_admin": True}, token=token)
    params = auth_refusal(client, response, 403 if token else 401)
    assert params["scope"] == ("notes:read notes:write" if token else "notes:write")
    assert "Invalid argument" not in response.text
    assert RAN == []


def test_a_caller_without_scope_in_someone_elses_session_gets_the_scope_refusal(
        client: Client, idp: TestIdentityProvider) -> None:
    """Authorize before admitting the session: 403 (or its tool-result form), not 404."""
    alices = client.in_era("handshake").open_session(token_for(idp, "notes:write"))
    response = client.call_tool("write_note", {"text": "x"}, token=token_for(idp, "notes:read"), session=alices)
    assert auth_refusal(client, response, 403)["error"] == "insufficient_scope"
    assert RAN == []


def test_someone_elses_session_is_404_even_when_the_budget_is_spent(client: Client,
                                                                   idp: TestIdentityProvider) -> None:
    """Admit the session before spending: a borrowed session is not found, whatever the budget."""
    spend_budget(client, "count_notes", token_for(idp, "notes:read"))
    alices = client.in_era("handshake").open_session(token_for(idp, "notes:read"))
    response = client.call_tool("count_notes", token=token_for(idp, "notes:read"), session=alices)
    assert response.status_code == 404
    assert RAN == []
