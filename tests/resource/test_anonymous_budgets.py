"""Unauthenticated traffic has budgets of its own (ops/ratelimit_keys.py, resource/gate.py).

A call without a valid token spends only the anonymous budgets (per address, and per tool for all
anonymous callers together), never a budget a signed-in call spends: an anonymous flood cannot 429
signed-in users. A failed authentication (a bad token, or none for a protected tool, ChatGPT's
tool-result challenge included) spends the address's anonymous budget too, so a flood of bad
tokens gets 429 with ``Retry-After`` (RFC 6585 §4) instead of an endless stream of 401s.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import served_trusting
from tests.support.budgets import ANONYMOUS_PER_ADDRESS, CHATGPT_META, TOOL_CEILING, budgets_app, call_from
from tests.support.http import tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.oauth import server_errors
from tests.support.serve import ServeProcess

BAD_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJub2JvZHkifQ.c2lnbmF0dXJl"


@pytest.fixture(scope="module")
def server(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("anonymous-budgets")
    with served_trusting(idp, tmp / "data", target=budgets_app(tmp), introspection=False, log_dir=tmp) as process:
        yield process
    assert server_errors(process.logs()) == []


def token(server: ServeProcess, idp: TestIdentityProvider) -> str:
    return idp.token(server.mcp_url, sub=new_subject(), scope="notes:read")


def test_anonymous_calls_of_a_public_tool_have_a_budget_per_address(server: ServeProcess) -> None:
    statuses = [call_from(server, "127.0.1.1", "hello").status_code for _ in range(ANONYMOUS_PER_ADDRESS + 1)]
    assert statuses == [200] * ANONYMOUS_PER_ADDRESS + [429]
    assert call_from(server, "127.0.1.2", "hello").status_code == 200  # another address: its own budget


def test_an_anonymous_flood_does_not_spend_the_tool_budget_of_signed_in_callers(server: ServeProcess,
                                                                               idp: TestIdentityProvider) -> None:
    """``ping`` allows five calls an hour from all anonymous callers together; once they are spent, a
    signed-in user's call of ``ping`` still runs: it spends the signed-in ceiling, a budget of its own."""
    flood = [call_from(server, f"127.0.2.{n}", "ping").status_code for n in range(1, TOOL_CEILING + 2)]
    assert flood == [200] * TOOL_CEILING + [429]
    signed_in = call_from(server, "127.0.2.50", "ping", token=token(server, idp))
    assert signed_in.status_code == 200
    assert tool_result(signed_in)["isError"] is False


def test_tokenless_chatgpt_calls_of_a_protected_tool_do_not_spend_its_budget(server: ServeProcess,
                                                                            idp: TestIdentityProvider) -> None:
    """Tokenless calls carrying ``openai/*`` ``_meta`` get the tool-result challenge (Apps SDK); more of
    them than the tool's whole ceiling leave a signed-in user's call of the tool untouched."""
    answers = [call_from(server, f"127.0.3.{n}", "count", meta=CHATGPT_META)
               for n in range(1, 4) for _ in range(ANONYMOUS_PER_ADDRESS)]
    assert len(answers) > TOOL_CEILING
    assert all(answer.status_code == 200 for answer in answers)
    assert all("mcp/www_authenticate" in tool_result(answer)["_meta"] for answer in answers)
    signed_in = call_from(server, "127.0.3.50", "count", token=token(server, idp), meta=CHATGPT_META)
    assert tool_result(signed_in)["isError"] is False


def test_a_flood_of_invalid_tokens_from_one_address_gets_429(server: ServeProcess, idp: TestIdentityProvider) -> None:
    """The attack pass: 1,500 refused calls from one address, never a 429. Each failed authentication
    now spends the address's anonymous budget; past it, 429 with Retry-After, for any tool."""
    refused = [call_from(server, "127.0.4.1", "count", token=BAD_TOKEN) for _ in range(ANONYMOUS_PER_ADDRESS)]
    assert [answer.status_code for answer in refused] == [401] * ANONYMOUS_PER_ADDRESS
    assert all("invalid_token" in answer.headers["www-authenticate"] for answer in refused)
    throttled = call_from(server, "127.0.4.1", "count", token=BAD_TOKEN)
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert call_from(server, "127.0.4.1", "hello").status_code == 429  # the same anonymous budget
    assert call_from(server, "127.0.4.2", "count", token=BAD_TOKEN).status_code == 401  # another address
    # a valid token from the flooding address spends signed-in budgets, not the anonymous one
    assert tool_result(call_from(server, "127.0.4.1", "hello", token=token(server, idp)))["isError"] is False


def test_missing_tokens_for_a_protected_tool_spend_the_anonymous_budget(server: ServeProcess) -> None:
    """No token for a protected tool is a failed authentication too, in either refusal style."""
    statuses = [call_from(server, "127.0.5.1", "count").status_code for _ in range(ANONYMOUS_PER_ADDRESS)]
    assert statuses == [401] * ANONYMOUS_PER_ADDRESS
    assert call_from(server, "127.0.5.1", "count").status_code == 429
    assert call_from(server, "127.0.5.1", "count", meta=CHATGPT_META).status_code == 429
