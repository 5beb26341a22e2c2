"""A revocation on one instance ends the access tokens on every instance within a second.

Two ``ringfence serve`` instances share PostgreSQL (tests/instances/conftest.py). Each test warms
a token on the second instance (a tool call answered 200: the token cached, its grant confirmed
there), revokes on the first, where the token is refused at once, then polls the second until it is
refused too: within a second, the most a confirmation is trusted. The revocations: RFC 7009 at
``/revoke``, the app disconnected on ``/account``, a replayed code (RFC 6749 §4.1.2), the account
deleted on ``/account/delete``. And when PostgreSQL cannot be reached, a token whose grant is due
for a check is refused with 503, never let through.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from ringfence.authserver.live_grants import CONFIRMED_SECONDS
from tests.authserver.revocation import SCOPE, assert_revoked, refused_within, search
from tests.instances.conftest import Deployment
from tests.support.faults import TcpProxy
from tests.support.http import assert_no_internals
from tests.support.oauth import BrowserLikeUser, DirectClient, add_user, hidden_fields, oauth_error
from tests.support.serve import CONTACTS_APP, ServeProcess

pytestmark = pytest.mark.postgres
WITHIN = 1.0 + 0.5  # "within a second", and the time of the call that shows it


@pytest.fixture(scope="module")
def client(contacts_pair: Deployment) -> DirectClient:
    return DirectClient.register(contacts_pair.public_url, contacts_pair.resource, client_name="Revoked twice")


@pytest.fixture
def person(contacts_pair: Deployment) -> Iterator[BrowserLikeUser]:
    """The deployment's user, at the first instance's pages."""
    assert contacts_pair.account is not None
    browser = BrowserLikeUser(contacts_pair.servers[0].base_url, contacts_pair.account)
    yield browser
    browser.close()


def on(client: DirectClient, server: ServeProcess) -> DirectClient:
    """The same client, sending its token requests straight to one instance."""
    return dataclasses.replace(client, issuer=server.base_url)


def warm_on_both(deployment: Deployment, token: str) -> None:
    for server in deployment.servers:
        assert search(server, token).status_code == 200


def assert_refused_here_at_once_and_there_within_a_second(deployment: Deployment, token: str) -> None:
    first, second = deployment.servers
    assert_revoked(search(first, token))
    waited = refused_within(WITHIN, lambda: search(second, token))
    assert waited is not None, f"still accepted by the other instance {WITHIN} s after the revocation"


def test_a_refresh_token_revoked_on_one_instance_ends_its_access_token_on_both(contacts_pair, client, person):
    """RFC 7009 §2.1: revocation at /revoke revokes the grant, everywhere."""
    tokens = on(client, contacts_pair.servers[0]).tokens(person, scope=SCOPE)
    warm_on_both(contacts_pair, tokens["access_token"])
    revoked = httpx.post(f"{contacts_pair.servers[0].base_url}/revoke",
                         data={"token": tokens["refresh_token"], "client_id": client.client_id})
    assert revoked.status_code == 200
    assert_refused_here_at_once_and_there_within_a_second(contacts_pair, tokens["access_token"])
    oauth_error(on(client, contacts_pair.servers[1]).refresh(tokens["refresh_token"]), 400, "invalid_grant")


def test_an_app_disconnected_on_one_instance_is_refused_on_both(contacts_pair, client, person):
    """The account page's "withdraw this at any time", kept on every instance."""
    tokens = on(client, contacts_pair.servers[0]).tokens(person, scope=SCOPE)
    warm_on_both(contacts_pair, tokens["access_token"])
    page = person.http.get("/account")
    answer = person.http.post("/account/revoke", data={"csrf": hidden_fields(page.text)["csrf"],
                                                       "client_id": client.client_id})
    assert answer.status_code == 303
    assert_refused_here_at_once_and_there_within_a_second(contacts_pair, tokens["access_token"])


def test_a_code_replayed_on_one_instance_ends_its_tokens_on_both(contacts_pair, client, person):
    """RFC 6749 §4.1.2: redeemed at the second instance, replayed at the first."""
    first, second = contacts_pair.servers
    code, request = on(client, first).code(person, scope=SCOPE)
    issued = on(client, second).redeem(code, request.verifier)
    assert issued.status_code == 200
    token = issued.json()["access_token"]
    warm_on_both(contacts_pair, token)
    oauth_error(on(client, first).redeem(code, request.verifier), 400, "invalid_grant")
    assert_refused_here_at_once_and_there_within_a_second(contacts_pair, token)


def test_an_account_deleted_on_one_instance_is_refused_on_both(contacts_pair, client):
    password = "a long enough password"
    account = add_user(contacts_pair.data_dir, "deleted-on-one", password, "--database-url",
                       contacts_pair.database_url)
    browser = BrowserLikeUser(contacts_pair.servers[0].base_url, account)
    try:
        token = on(client, contacts_pair.servers[0]).tokens(browser, scope=SCOPE)["access_token"]
        warm_on_both(contacts_pair, token)
        page = browser.http.get("/account/delete")
        gone = browser.http.post("/account/delete", data={"csrf": hidden_fields(page.text)["csrf"],
                                                          "password": password})
        assert gone.status_code == 200 and "Account deleted" in gone.text
    finally:
        browser.close()
    assert_refused_here_at_once_and_there_within_a_second(contacts_pair, token)


# PostgreSQL unreachable ----------------------------------------------------------------------------


def test_an_unreachable_database_refuses_a_token_due_for_its_check_with_503(contacts_pair: Deployment,
                                                                           tmp_path: Path) -> None:
    """Fail closed: with PostgreSQL cut off, a token whose grant cannot be confirmed is refused (503),
    with no internals; restored, the same process accepts it again."""
    assert contacts_pair.account is not None
    real = make_url(contacts_pair.database_url)
    with TcpProxy([(real.host or "127.0.0.1", real.port or 5432)]) as proxy:
        through_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        server = ServeProcess(CONTACTS_APP, "--data-dir", str(tmp_path / "data"), "--database-url",
                              through_proxy).start(tmp_path)
        browser = BrowserLikeUser(server.base_url, contacts_pair.account)
        try:
            client = DirectClient.register(server.base_url, server.mcp_url, client_name="Outage")
            token = client.tokens(browser, scope=SCOPE)["access_token"]
            assert search(server, token).status_code == 200

            proxy.cut()
            time.sleep(CONFIRMED_SECONDS + 0.1)  # the grant's confirmed second is over
            refused = search(server, token)
            assert refused.status_code == 503
            assert refused.headers["retry-after"].isdigit()
            assert refused.json()["error"] == "temporarily_unavailable"
            assert "could not be checked" in refused.json()["error_description"]
            assert_no_internals(refused)

            proxy.restore()
            assert search(server, token).status_code == 200
        finally:
            browser.close()
            server.stop()
