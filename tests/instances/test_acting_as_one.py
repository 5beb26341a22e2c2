"""Two instances on one PostgreSQL and one Redis act as one server (issue #6, item 5).

Each test sends requests to the instance it chooses, often to both at the same moment: a
confirmation is used once, a refresh token is rotated once and its replay caught on either
instance, one principal's budget is spent once, and the audit log stays one gap-free chain.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.instances.conftest import Deployment
from tests.instances.notes_app import PER_PRINCIPAL
from tests.support.http import result_text, tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.instances import Caller, audit_verify, audited_calls, call_async, notes
from tests.support.oauth import BrowserLikeUser, DirectClient, oauth_error
from tests.support.serve import ServeProcess

pytestmark = pytest.mark.postgres


def at_once(*requests: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Send the requests from separate threads released together, so the instances race for real."""
    barrier = threading.Barrier(len(requests))
    answers: list[Any] = [None] * len(requests)

    def run(index: int) -> None:
        barrier.wait(timeout=10)
        try:
            answers[index] = requests[index]()
        except Exception as exc:  # reported below as the test's failure, not lost in the thread
            answers[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for answer in answers:
        assert isinstance(answer, httpx.Response), f"a request did not complete: {answer!r}"
    return answers


# The embedded authorization server and confirmations, on both instances --------------------------


@pytest.fixture(scope="module")
def client(contacts_pair: Deployment) -> DirectClient:
    return DirectClient.register(contacts_pair.public_url, contacts_pair.resource, client_name="Two instances")


@pytest.fixture(scope="module")
def user(contacts_pair: Deployment) -> Iterator[BrowserLikeUser]:
    assert contacts_pair.account is not None
    person = BrowserLikeUser(contacts_pair.public_url, contacts_pair.account)
    yield person
    person.close()


def on(client: DirectClient, server: ServeProcess) -> DirectClient:
    """The same client, sending its token requests straight to one instance."""
    return dataclasses.replace(client, issuer=server.base_url)


def test_a_reused_refresh_token_is_caught_by_the_other_instance(contacts_pair, client, user):
    """OAuth 2.1 §4.3.1: rotated on one instance, the old token replayed at the other revokes the family."""
    first, second = contacts_pair.servers
    tokens = client.tokens(user, scope="contacts:read")
    rotated = on(client, first).refresh(tokens["refresh_token"])
    assert rotated.status_code == 200
    oauth_error(on(client, second).refresh(tokens["refresh_token"]), 400, "invalid_grant")
    oauth_error(on(client, first).refresh(rotated.json()["refresh_token"]), 400, "invalid_grant")


@pytest.mark.parametrize("attempt", range(3))
def test_one_refresh_token_sent_to_both_instances_at_once_is_redeemed_once(contacts_pair, client, user, attempt):
    """OAuth 2.1 §4.3.1 single use under a real race: one instance rotates it, the other refuses it."""
    tokens = client.tokens(user, scope="contacts:read")
    answers = at_once(*(lambda s=server: on(client, s).refresh(tokens["refresh_token"])
                        for server in contacts_pair.servers))
    assert sorted(answer.status_code for answer in answers) == [200, 400]
    refused = next(answer for answer in answers if answer.status_code == 400)
    oauth_error(refused, 400, "invalid_grant")


@pytest.fixture(scope="module")
def contacts_token(client: DirectClient, user: BrowserLikeUser) -> str:
    return client.tokens(user, scope="contacts:read contacts:write")["access_token"]


@pytest.mark.parametrize("attempt", range(3))
def test_a_confirmation_sent_to_both_instances_at_once_runs_the_deletion_once(contacts_pair, contacts_token,
                                                                              attempt):
    """A confirmation handle is single-use across instances, even when both receive it at the same moment."""
    first, second = contacts_pair.servers
    added = tool_result(first.call_tool("add_contact", {"name": f"Raced {attempt}"}, token=contacts_token))
    contact = added["structuredContent"]["id"]
    pending = tool_result(second.call_tool("delete_contact", {"contact_id": contact}, token=contacts_token))
    handle = pending["_meta"]["ringfence/confirmation"]["handle"]
    confirmed = {"contact_id": contact, "confirmation": handle}
    answers = [tool_result(answer) for answer in at_once(
        *(lambda s=server: s.call_tool("delete_contact", confirmed, token=contacts_token)
          for server in contacts_pair.servers))]
    assert sorted(answer["isError"] for answer in answers) == [False, True]
    done = next(answer for answer in answers if not answer["isError"])
    refused = next(answer for answer in answers if answer["isError"])
    assert done["structuredContent"]["result"] == f"Deleted contact {contact}."
    assert result_text(refused).startswith("This confirmation is not valid for this call")


def test_a_handle_issued_by_one_instance_confirms_on_the_other_once(contacts_pair, contacts_token):
    first, second = contacts_pair.servers
    contact = tool_result(first.call_tool("add_contact", {"name": "Handed over"}, token=contacts_token))
    contact_id = contact["structuredContent"]["id"]
    pending = tool_result(first.call_tool("delete_contact", {"contact_id": contact_id}, token=contacts_token))
    confirmed = {"contact_id": contact_id, "confirmation": pending["_meta"]["ringfence/confirmation"]["handle"]}
    assert tool_result(second.call_tool("delete_contact", confirmed, token=contacts_token))["isError"] is False
    again = tool_result(first.call_tool("delete_contact", confirmed, token=contacts_token))
    assert again["isError"] is True and "not valid for this call" in result_text(again)


def test_a_token_issued_through_one_instance_is_accepted_by_both(contacts_pair, contacts_token):
    """Shared keys: both instances verify what either issued; an altered token is refused by both."""
    altered = contacts_token[:-3] + "AAA"
    for server in contacts_pair.servers:
        found = tool_result(server.call_tool("search_contacts", {"query": "x"}, token=contacts_token))
        assert found["isError"] is False
        assert server.call_tool("search_contacts", {"query": "x"}, token=altered).status_code == 401


# Rate limits and the audit chain, on both instances -------------------------------------------------


def run_callers(callers: list[Caller], calls_each: int) -> None:
    async def run() -> None:
        await asyncio.gather(*(caller.add_notes(calls_each) for caller in callers))

    asyncio.run(run())


def test_one_principals_budget_holds_across_instances_under_concurrent_calls(notes_pair, idp: TestIdentityProvider):
    """MCP tools: servers MUST rate-limit invocations; concurrent calls to both instances spend one budget."""
    subject = new_subject()
    token = idp.token(notes_pair.resource, sub=subject, scope="notes:write")
    urls = [server.mcp_url for server in notes_pair.servers]
    calls = PER_PRINCIPAL + 30

    async def burst() -> list[Any]:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=40)) as http:
            return await asyncio.gather(*(
                call_async(http, urls[n % 2], "add_note", {"text": f"{subject}-{n}"}, token) for n in range(calls)
            ))

    outcomes = asyncio.run(burst())
    assert Counter(outcome.status for outcome in outcomes) == {200: PER_PRINCIPAL, 429: 30}
    assert sum(outcome.acknowledged for outcome in outcomes) == PER_PRINCIPAL
    assert len({n for n in notes(notes_pair.database_url) if n.startswith(subject)}) == PER_PRINCIPAL


def test_concurrent_calls_on_both_instances_make_one_verifiable_audit_chain(notes_pair, idp: TestIdentityProvider):
    """One chain, gap-free, with a ``tool.call`` record for every acknowledged call, whichever instance took it."""
    urls = [server.mcp_url for server in notes_pair.servers]
    callers = []
    for index in range(8):
        subject = new_subject()
        callers.append(Caller(subject, idp.token(notes_pair.resource, sub=subject, scope="notes:write"),
                              urls[index % 2:] + urls[:index % 2]))
    run_callers(callers, 25)
    assert all(caller.statuses() == {200: 25} for caller in callers)
    audited = audited_calls(notes_pair.database_url, notes_pair.data_dir)
    for caller in callers:
        assert audited[caller.name] == len(caller.acknowledged()) == 25
    assert audit_verify(notes_pair.database_url, notes_pair.data_dir).startswith("audit log intact: records #1 to #")
