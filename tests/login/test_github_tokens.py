"""A tool that acts at GitHub as the person (``provider_scopes={"github": ["repo"]}``), against a stand-in
that answers as GitHub documents (github.com cannot be reached from here): an OAuth app's token that does
not expire, a GitHub App's expiring user token refreshed (and its refresh token used once), and the
token deleted at GitHub through "Delete an app token" when the person removes the access.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.clients.support import ticked_boxes
from tests.support.http import tool_result
from tests.support.idp import free_port
from tests.support.login import ProviderUser, to_consent_page
from tests.support.login_standin import CLIENT, LoginStandIn
from tests.support.oauth import EmbeddedServer, hidden_fields, query_of, start_embedded

APP = str(Path(__file__).with_name("github_app.py"))


@pytest.fixture(scope="module")
def server(standin: LoginStandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    github = (f"github,client-id={CLIENT[0]},client-secret-env=STANDIN_GITHUB_SECRET,allowed-org=acme,"
              f"github-url={standin.github_url},github-api-url={standin.github_api_url}")
    running = start_embedded(tmp_path_factory.mktemp("github-tokens"), "--login-provider", github, target=APP,
                             port=free_port(), env={"STANDIN_GITHUB_SECRET": CLIENT[1],
                                                    "GITHUB_API": standin.github_api_url})
    yield running
    running.stop_and_check()


def linked(standin: LoginStandIn, server: EmbeddedServer) -> tuple[ProviderUser, str]:
    """Carol links an MCP client by signing in at GitHub: her browser, and the client's access token."""
    at = to_consent_page(server, standin.issuer, "carol", "Repos client")
    answer = at.user.http.post(f"{server.issuer}/authorize", data={
        **hidden_fields(at.page.text), **ticked_boxes(at.page.text), "decision": "allow"})
    token = at.client.redeem(query_of(answer.headers["location"])["code"], at.request.verifier)
    assert token.status_code == 200, token.text
    return at.user, token.json()["access_token"]


def login_at_github(server: EmbeddedServer, token: str) -> dict:
    found = tool_result(server.process.call_tool("my_github_login", {}, token=token))
    text = found["content"][0]["text"]
    if found["isError"]:
        return {"error": text}
    return json.loads(text[text.index("{"):text.rindex("}") + 1])  # inside the untrusted-data marking


def test_the_tool_calls_githubs_api_with_the_persons_token_which_asked_for_repo(standin: LoginStandIn,
                                                                                 server: EmbeddedServer) -> None:
    standin.be()  # an OAuth app: its tokens do not expire
    _, token = linked(standin, server)
    assert "repo" in standin.requests[-1]["scope"].split()  # asked for at the sign-in
    answer = login_at_github(server, token)
    assert answer["login"] == "carol" and "repo" in answer["scopes"]  # GitHub's comma-separated scope, read


def test_a_github_apps_expiring_token_is_refreshed_and_its_refresh_token_used_once(standin: LoginStandIn,
                                                                                    server: EmbeddedServer) -> None:
    standin.be(expiring=62)  # renewed 60 seconds before it expires: two seconds after it is issued
    _, token = linked(standin, server)
    first = login_at_github(server, token)
    time.sleep(3)
    second = login_at_github(server, token)
    assert second["login"] == "carol" and second["seen"] != first["seen"]
    assert len(standin.github_refresh_tokens) == 1  # the used one is gone, its successor kept


def test_a_refresh_github_refuses_asks_the_person_to_sign_in_again(standin: LoginStandIn,
                                                                  server: EmbeddedServer) -> None:
    standin.be(expiring=62)
    _, token = linked(standin, server)
    standin.github_refresh_tokens.clear()  # revoked at GitHub
    time.sleep(3)
    assert "Sign in with GitHub again" in login_at_github(server, token)["error"]


def test_removing_the_access_deletes_the_token_at_github(standin: LoginStandIn, server: EmbeddedServer) -> None:
    standin.be()
    user, token = linked(standin, server)
    assert login_at_github(server, token)["login"] == "carol"
    live = set(standin.github_tokens)
    page = user.http.get(f"{server.issuer}/account")
    assert "Access at GitHub" in page.text
    user.http.post(f"{server.issuer}/account/provider-access", data={"csrf": hidden_fields(page.text)["csrf"]})
    assert len(set(standin.github_tokens)) == len(live) - 1  # GitHub's "Delete an app token" was called
    assert "Sign in with GitHub again" in login_at_github(server, token)["error"]


def test_calls_due_for_a_refresh_at_once_refresh_once(standin: LoginStandIn, server: EmbeddedServer) -> None:
    """GitHub uses a refresh token once: two calls that find the token due at the same moment must not both
    spend it (the instance that claims the row refreshes; the other waits for its result)."""
    standin.be(expiring=62)
    _, token = linked(standin, server)
    time.sleep(3)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: login_at_github(server, token), range(4)))
    assert [answer.get("login") for answer in answers] == ["carol"] * 4, answers
    assert len({answer["seen"] for answer in answers}) == 1  # one refresh, its token shared
    assert len(standin.github_refresh_tokens) == 1


def test_github_down_at_a_refresh_fails_closed_and_keeps_the_access(standin: LoginStandIn,
                                                                   server: EmbeddedServer) -> None:
    standin.be(expiring=62)
    _, token = linked(standin, server)
    time.sleep(3)
    standin.faults.add("down")
    assert "GitHub cannot be reached right now" in login_at_github(server, token)["error"]
    standin.faults.clear()
    assert login_at_github(server, token)["login"] == "carol"  # nothing was deleted: it refreshes now


# -- least privilege at sign-in: GitHub is asked for "repo" only on the way to an app -------------------


def account_page(user: ProviderUser, server: EmbeddedServer) -> str:
    page = user.http.get(f"{server.issuer}/account")
    assert page.status_code == 200
    return page.text


def test_signing_in_on_the_account_page_asks_github_who_the_person_is_and_nothing_more(
        standin: LoginStandIn, server: EmbeddedServer) -> None:
    standin.be(github_id=5353, login="dave")
    dave = ProviderUser(standin.issuer, "dave")
    assert dave.go(f"{server.issuer}/login/github?next=/account").status_code == 200
    assert set(standin.requests[-1]["scope"].split()) == {"read:user", "user:email", "read:org"}  # no "repo"
    assert "Access at GitHub" not in account_page(dave, server)


def test_the_link_a_tool_gives_asks_github_for_repo_again_and_the_tool_acts_again(
        standin: LoginStandIn, server: EmbeddedServer) -> None:
    standin.be()
    user, token = linked(standin, server)
    page = account_page(user, server)
    user.http.post(f"{server.issuer}/account/provider-access", data={"csrf": hidden_fields(page)["csrf"]})
    error = login_at_github(server, token)["error"]
    link = error[error.index(server.issuer):].split()[0]
    assert "next=%2Faccount%23provider-access" in link
    user.go(link)
    assert "repo" in standin.requests[-1]["scope"].split()
    assert "Access at GitHub" in account_page(user, server)
    assert login_at_github(server, token)["login"] == "carol"


def test_declining_the_app_at_the_consent_page_keeps_no_github_token(standin: LoginStandIn,
                                                                      server: EmbeddedServer) -> None:
    standin.be(github_id=6464, login="erin")
    tokens_before = len(standin.github_tokens)
    at = to_consent_page(server, standin.issuer, "erin", "Declined repos client")
    assert "repo" in standin.requests[-1]["scope"].split()
    erin = at.user
    answer = erin.http.post(f"{server.issuer}/authorize", data={**hidden_fields(at.page.text), "decision": "deny"})
    assert query_of(answer.headers["location"])["error"] == "access_denied"
    assert "Access at GitHub" not in account_page(erin, server)
    assert len(standin.github_tokens) == tokens_before  # the token GitHub gave was deleted there too


def test_the_renew_link_followed_with_no_app_connected_keeps_no_github_token(standin: LoginStandIn,
                                                                              server: EmbeddedServer) -> None:
    standin.be(github_id=7575, login="frank")
    tokens_before = len(standin.github_tokens)
    frank = ProviderUser(standin.issuer, "frank")
    assert frank.go(f"{server.issuer}/login/github?next=%2Faccount%23provider-access").status_code == 200
    assert "repo" in standin.requests[-1]["scope"].split()  # the link asks: who follows it is not known yet
    assert "Access at GitHub" not in account_page(frank, server)
    assert len(standin.github_tokens) == tokens_before  # nothing acts for frank: deleted at GitHub at once
