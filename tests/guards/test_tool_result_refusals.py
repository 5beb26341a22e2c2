"""The Apps SDK refusal form: a tool result with ``isError`` and ``_meta["mcp/www_authenticate"]``.

ChatGPT marks its calls with ``openai/*`` keys in ``_meta`` and starts account linking only from
this form; every other client gets HTTP 401/403. ``--refusal-style`` forces one form or the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import external_idp_args
from tests.support.contacts import add_contact, contact_names
from tests.support.http import challenge, parse_bearer_challenge, tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.serve import CONTACTS_APP, ServeProcess, start_together, stop_together

CHATGPT = {"openai/session": "x"}


def refusal_challenge(result: dict[str, Any]) -> dict[str, str]:
    """The one challenge of a tool-result refusal, parsed; the result must be an error."""
    assert result["isError"] is True
    challenges = result["_meta"]["mcp/www_authenticate"]
    assert isinstance(challenges, list) and len(challenges) == 1
    return parse_bearer_challenge(challenges[0])


@pytest.fixture(scope="module")
def servers(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, ...]]:
    """The reference app with the default refusal style, then with each forced one, started together."""
    data = tmp_path_factory.mktemp("refusal-styles")
    args, env = external_idp_args(idp)
    styles = {"default": [], "http": ["--refusal-style", "http"], "tool-result": ["--refusal-style", "tool-result"]}
    styled = [ServeProcess(CONTACTS_APP, *args, *style, "--data-dir", str(data / name), env=env)
              for name, style in styles.items()]
    yield start_together(data, *styled)
    stop_together(*styled)


@pytest.fixture(scope="module")
def contacts(servers: tuple[ServeProcess, ...]) -> ServeProcess:
    """No --refusal-style (``auto``): ChatGPT's calls get the tool-result form, others HTTP."""
    return servers[0]


@pytest.fixture(scope="module")
def http_style(servers: tuple[ServeProcess, ...]) -> ServeProcess:
    """``--refusal-style http``: 401/403 for every client."""
    return servers[1]


@pytest.fixture(scope="module")
def tool_result_style(servers: tuple[ServeProcess, ...]) -> ServeProcess:
    """``--refusal-style tool-result``: the Apps SDK form for every client."""
    return servers[2]


# auto (default): ChatGPT's calls get the tool-result form ----------------------------------------


def test_chatgpt_call_without_token_gets_a_tool_result_challenge_with_an_error_code(contacts: ServeProcess) -> None:
    """Apps SDK auth: HTTP 200, ``isError``, and a challenge with ``error``/``error_description`` (to start linking)."""
    response = contacts.call_tool("search_contacts", {"query": "ann"}, meta=CHATGPT)
    assert response.status_code == 200
    params = refusal_challenge(tool_result(response))
    assert params == {
        "error": "invalid_token",
        "error_description": params["error_description"],
        "scope": "contacts:read",
        "resource_metadata": contacts.metadata_url,
    }
    assert params["error_description"]


def test_chatgpt_call_lacking_scope_gets_insufficient_scope_and_the_tool_does_not_run(
        contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """MCP step-up in the Apps SDK form: ``scope`` = granted + required; delete_contact must not delete."""
    owner = new_subject()
    contact_id = add_contact(contacts, idp, owner, "Keep Kim")
    reader = idp.token(contacts.mcp_url, sub=owner, scope="contacts:read")
    response = contacts.call_tool("delete_contact", {"contact_id": contact_id}, token=reader, meta=CHATGPT)
    params = refusal_challenge(tool_result(response))
    assert params["error"] == "insufficient_scope"
    assert params["error_description"]
    assert params["scope"] == "contacts:read contacts:write"
    assert params["resource_metadata"] == contacts.metadata_url
    assert contact_names(contacts, idp, owner, "kim") == ["Keep Kim"]


def test_chatgpt_call_with_an_invalid_token_is_still_refused_over_http(contacts: ServeProcess) -> None:
    """The openai hint only picks the format of a scope refusal; a bad token is a 401 for everyone."""
    response = contacts.call_tool("search_contacts", {"query": "ann"}, token="a.b.c", meta=CHATGPT)
    assert response.status_code == 401
    assert challenge(response)["error"] == "invalid_token"


def test_chatgpt_call_with_the_scope_runs_normally(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """The tool-result form is only for refusals: an authorized ChatGPT call gets the real result."""
    owner = new_subject()
    add_contact(contacts, idp, owner, "Chat Chen")
    token = idp.token(contacts.mcp_url, sub=owner, scope="contacts:read")
    result = tool_result(contacts.call_tool("search_contacts", {"query": "chen"}, token=token, meta=CHATGPT))
    assert result["isError"] is False
    assert "mcp/www_authenticate" not in result.get("_meta", {})


# --refusal-style http: HTTP answers even for ChatGPT ---------------------------------------------


def test_http_style_answers_a_chatgpt_call_without_token_with_401(http_style: ServeProcess) -> None:
    """``--refusal-style http``: the MCP authorization form (RFC 6750 §3.1) whatever the client."""
    response = http_style.call_tool("search_contacts", {"query": "ann"}, meta=CHATGPT)
    assert response.status_code == 401
    assert challenge(response) == {"scope": "contacts:read", "resource_metadata": http_style.metadata_url}


def test_http_style_answers_a_chatgpt_call_lacking_scope_with_403(http_style: ServeProcess,
                                                                  idp: TestIdentityProvider) -> None:
    """``--refusal-style http``: 403 ``insufficient_scope`` at the HTTP layer."""
    reader = idp.token(http_style.mcp_url, scope="contacts:read")
    response = http_style.call_tool("add_contact", {"name": "No"}, token=reader, meta=CHATGPT)
    assert response.status_code == 403
    assert challenge(response)["error"] == "insufficient_scope"


# --refusal-style tool-result: the tool-result form for every client ------------------------------


def test_tool_result_style_answers_a_plain_call_without_token_in_the_result(tool_result_style: ServeProcess) -> None:
    """``--refusal-style tool-result``: no openai hint needed; the challenge carries an error code."""
    response = tool_result_style.call_tool("search_contacts", {"query": "ann"})
    params = refusal_challenge(tool_result(response))
    assert params["error"] == "invalid_token"
    assert params["scope"] == "contacts:read"
    assert params["resource_metadata"] == tool_result_style.metadata_url


def test_tool_result_style_refuses_a_call_lacking_scope_without_running_it(tool_result_style: ServeProcess,
                                                                           idp: TestIdentityProvider) -> None:
    """``--refusal-style tool-result``: the refusal is a result, and the destructive tool did not run."""
    owner = new_subject()
    contact_id = add_contact(tool_result_style, idp, owner, "Tess Tool")
    reader = idp.token(tool_result_style.mcp_url, sub=owner, scope="contacts:read")
    response = tool_result_style.call_tool("delete_contact", {"contact_id": contact_id}, token=reader)
    params = refusal_challenge(tool_result(response))
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "contacts:read contacts:write"
    assert contact_names(tool_result_style, idp, owner, "tess") == ["Tess Tool"]


def test_tool_result_style_still_refuses_an_invalid_token_over_http(tool_result_style: ServeProcess) -> None:
    """A token that fails verification is a 401 in every style: the style never lets a bad token through."""
    response = tool_result_style.call_tool("search_contacts", {"query": "ann"}, token="a.b.c")
    assert response.status_code == 401
    assert challenge(response)["error"] == "invalid_token"
