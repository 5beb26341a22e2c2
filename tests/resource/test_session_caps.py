"""2025-era MCP sessions are bounded per source and in all, with room kept for signed-in users
(resource/sessions.py; MCP security best practices: session hijacking, resource exhaustion).

Here the server holds at most 6 sessions: 4 anonymous ones in all, 2 per address, 2 per signed-in
principal. Over a source's own bound the answer is 429, over a shared one 503, both with
``Retry-After``. A session id the server holds no binding for is answered 404 whoever presents
it: a session is never handed to another principal, however many sessions were opened meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ringfence.config import ConfigError, Settings
from ringfence.refusals import UnknownSession
from ringfence.resource.sessions import SessionOwners
from tests.conftest import served_trusting
from tests.support.http import tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.oauth import server_errors
from tests.support.serve import LEGACY_VERSION, MCP_ACCEPT, ServeProcess

LIMITS = {"RINGFENCE_MAX_SESSIONS": "6", "RINGFENCE_MAX_ANONYMOUS_SESSIONS": "4",
          "RINGFENCE_MAX_ANONYMOUS_SESSIONS_PER_ADDRESS": "2", "RINGFENCE_MAX_SESSIONS_PER_PRINCIPAL": "2"}
INITIALIZE = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
              "params": {"protocolVersion": LEGACY_VERSION, "capabilities": {},
                         "clientInfo": {"name": "ringfence-tests", "version": "0"}}}
SEARCH = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
          "params": {"name": "search_contacts", "arguments": {"query": "ann"}}}
LIST = {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}  # public: answered without a token


@pytest.fixture
def server(idp: TestIdentityProvider, tmp_path: Path) -> Iterator[ServeProcess]:
    """A server per test: the session table is the state under test."""
    with served_trusting(idp, tmp_path / "data", introspection=False, env=LIMITS, log_dir=tmp_path) as process:
        yield process
    # the 503s these tests provoke (a shared bound reached) are access lines; nothing else may be a 5xx
    unexpected = [line for line in server_errors(process.logs())
                  if not ('"status":503' in line and '"path":"/mcp"' in line and "Traceback" not in line)]
    assert unexpected == []


def post(server: ServeProcess, message: dict, *, address: str = "127.0.0.1", token: str | None = None,
         session: str | None = None, method: str = "POST") -> httpx.Response:
    headers = {"content-type": "application/json", "accept": MCP_ACCEPT}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if session is not None:
        headers |= {"mcp-session-id": session, "mcp-protocol-version": LEGACY_VERSION}
    with httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10) as client:
        return client.request(method, server.mcp_url, json=message if method == "POST" else None, headers=headers)


def opened(server: ServeProcess, *, address: str = "127.0.0.1", token: str | None = None) -> str:
    answer = post(server, INITIALIZE, address=address, token=token)
    assert answer.status_code == 200, answer.text
    return answer.headers["mcp-session-id"]


def reader(server: ServeProcess, idp: TestIdentityProvider, subject: str | None = None) -> str:
    return idp.token(server.mcp_url, sub=subject or new_subject(), scope="contacts:read")


def test_anonymous_sessions_are_bounded_per_address(server: ServeProcess) -> None:
    """429 for the third from one address (its own bound); another address still opens one."""
    opened(server, address="127.0.7.1")
    opened(server, address="127.0.7.1")
    third = post(server, INITIALIZE, address="127.0.7.1")
    assert third.status_code == 429
    assert int(third.headers["retry-after"]) > 0
    assert "mcp-session-id" not in third.headers
    opened(server, address="127.0.7.2")


def test_anonymous_sessions_in_all_leave_room_for_signed_in_users(server: ServeProcess,
                                                                 idp: TestIdentityProvider) -> None:
    """The attack pass: 10,050 anonymous initializes filled the SDK's table and every new client got 503.
    Now anonymous ones stop at their own bound (503 for the next, from any address), and signed-in
    users still open sessions in the room kept for them."""
    for n in range(4):
        opened(server, address=f"127.0.8.{n + 1}")
    refused = post(server, INITIALIZE, address="127.0.8.9")
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "60"
    assert "sign in" in refused.json()["error_description"]
    opened(server, address="127.0.8.9", token=reader(server, idp))
    opened(server, address="127.0.8.9", token=reader(server, idp))
    assert post(server, INITIALIZE, address="127.0.8.10", token=reader(server, idp)).status_code == 503  # 6 in all


def test_sessions_are_bounded_per_signed_in_principal(server: ServeProcess, idp: TestIdentityProvider) -> None:
    subject = new_subject()
    opened(server, token=reader(server, idp, subject))
    opened(server, token=reader(server, idp, subject))
    assert post(server, INITIALIZE, token=reader(server, idp, subject)).status_code == 429
    opened(server, token=reader(server, idp))  # another principal


def test_an_ended_session_gives_its_room_back_and_its_id_is_never_adopted(server: ServeProcess,
                                                                          idp: TestIdentityProvider) -> None:
    """After DELETE (MCP Streamable HTTP) the address may open another; the old id answers 404 to
    anyone, anonymous or signed in: an id without a binding is refused, never bound to its presenter."""
    first = opened(server, address="127.0.9.1")
    opened(server, address="127.0.9.1")
    assert post(server, {}, address="127.0.9.1", session=first, method="DELETE").status_code == 200
    opened(server, address="127.0.9.1")
    assert post(server, LIST, address="127.0.9.1", session=first).status_code == 404
    assert post(server, SEARCH, token=reader(server, idp), session=first).status_code == 404


def test_a_made_up_session_id_is_not_found(server: ServeProcess, idp: TestIdentityProvider) -> None:
    assert post(server, SEARCH, token=reader(server, idp), session="0" * 32).status_code == 404


def test_a_full_session_table_never_hands_a_session_to_another_principal(server: ServeProcess,
                                                                         idp: TestIdentityProvider) -> None:
    """The attack pass: a flood pushed the victim's binding out of the owner table, after which another
    principal's token was accepted on the victim's session. Now the flood is refused at the bounds,
    no binding is dropped while its session lives, and the intruder gets 404 while the victim is served."""
    victim = new_subject()
    session = opened(server, token=reader(server, idp, victim))
    flood = [post(server, INITIALIZE, address=f"127.0.10.{n % 8 + 1}").status_code for n in range(30)]
    assert flood[:4] == [200] * 4 and set(flood[4:]) == {503}
    intruder = post(server, SEARCH, token=reader(server, idp), session=session)
    assert intruder.status_code == 404
    assert tool_result(post(server, SEARCH, token=reader(server, idp, victim), session=session))["isError"] is False


def test_anonymous_session_claimed_by_a_user_counts_against_that_user(server: ServeProcess,
                                                                      idp: TestIdentityProvider) -> None:
    """An anonymous session claimed on sign-in (the linking flow) moves to its principal's bound: it
    frees its address's room, and a second principal still cannot use it."""
    subject = new_subject()
    session = opened(server, address="127.0.11.1")
    opened(server, address="127.0.11.1")
    assert tool_result(post(server, SEARCH, token=reader(server, idp, subject), session=session))["isError"] is False
    opened(server, address="127.0.11.1")  # the claimed session no longer counts against the address
    assert post(server, SEARCH, token=reader(server, idp), session=session).status_code == 404
    opened(server, token=reader(server, idp, subject))
    assert post(server, INITIALIZE, token=reader(server, idp, subject)).status_code == 429  # 2 for the user


def test_session_limits_must_nest() -> None:
    with pytest.raises(ConfigError, match="session limits"):
        Settings.load(max_sessions=10, max_anonymous_sessions=20)
    with pytest.raises(ConfigError, match="session limits"):
        Settings.load(max_anonymous_sessions=5, max_anonymous_sessions_per_address=6)


def test_a_session_the_sdk_holds_without_a_binding_is_refused_to_everyone() -> None:
    """Fail closed: the old owner table forgot its oldest bindings under a flood while the SDK kept the
    sessions, and an unknown id was let through to the SDK, which then served anyone. An id with no
    binding is now refused (404) whoever presents it, even while the SDK still holds the session."""
    owners = SessionOwners({"held-by-the-sdk": object()})
    for presenter in (None, ("https://idp.example", "mallory", "client")):
        with pytest.raises(UnknownSession):
            owners.admit("held-by-the-sdk", presenter)
