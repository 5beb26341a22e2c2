"""The embedded authorization server on PostgreSQL: the same flow, the same single-use guarantees.

Codes and refresh tokens are redeemed with one conditional ``UPDATE ... RETURNING`` (atomic single
use, OAuth 2.1 §4.1.3 / §4.3.1); here that runs on PostgreSQL through ``--database-url``. The user is
made with ``ringfence users add --database-url`` and signs in over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.oauth import (
    MODES,
    Account,
    BrowserLikeUser,
    DirectClient,
    EmbeddedServer,
    Linked,
    add_user,
    linked_in_each_era,
    oauth_error,
)
from tests.support.serve import CONTACTS_APP, ServeProcess

pytestmark = pytest.mark.usefixtures("no_server_errors")



@pytest.fixture(scope="module")
def embedded(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    data = tmp_path_factory.mktemp("postgres")
    account = add_user(data, "pat", "postgres-password-1", "--database-url", postgres_url)
    process = ServeProcess(CONTACTS_APP, "--data-dir", str(data), "--database-url", postgres_url).start(data)
    server = EmbeddedServer(process, account, data)
    yield server
    server.stop_and_check()


@pytest.fixture(scope="module")
def linked(embedded: EmbeddedServer) -> Iterator[dict[str, Linked]]:
    with linked_in_each_era(embedded.issuer, embedded.account, embedded.mcp_url, lambda mode: {
        "added": ("add_contact", {"name": f"Postgres {mode}"}),
        "found": ("search_contacts", {"query": f"postgres {mode}"}),
    }) as results:
        yield results


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def test_no_first_user_is_generated_when_one_was_added(embedded: EmbeddedServer) -> None:
    """``users add --database-url`` wrote to PostgreSQL: the server found a user and made none."""
    assert "created the first user" not in embedded.logs()


def test_sdk_links_and_calls_tools(linked: dict[str, Linked], mode: str) -> None:
    """Registration, sign-in (the CLI-made account), consent, token, tool calls: all on PostgreSQL."""
    result = linked[mode]
    assert [e.status for e in result.log.to("/register")] == [201]
    assert [e.status for e in result.log.token_requests("authorization_code")] == [200]
    assert len(result.user.login_pages) == 1
    assert result.calls["added"].is_error is False
    assert result.calls["found"].structured_content["result"] == [result.calls["added"].structured_content]


@pytest.fixture(scope="module")
def client(embedded: EmbeddedServer) -> DirectClient:
    return DirectClient.register(embedded.issuer, embedded.mcp_url)


@pytest.fixture(scope="module")
def user(embedded: EmbeddedServer) -> Iterator[BrowserLikeUser]:
    person = BrowserLikeUser(embedded.issuer, embedded.account)
    yield person
    person.close()


def test_wrong_password_is_refused(embedded: EmbeddedServer) -> None:
    """The account's argon2id hash is read back from PostgreSQL and checked."""
    person = BrowserLikeUser(embedded.issuer, Account(embedded.account.username, "not-the-password"))
    try:
        assert person.sign_in().status_code == 401
    finally:
        person.close()


def test_reused_code_is_refused_and_revokes_its_refresh_token(client: DirectClient, user: BrowserLikeUser) -> None:
    """OAuth 2.1 §4.1.3: single use, on PostgreSQL too; reuse revokes what the code issued."""
    code, request = client.code(user)
    first = client.redeem(code, request.verifier)
    assert first.status_code == 200
    oauth_error(client.redeem(code, request.verifier), 400, "invalid_grant")
    oauth_error(client.refresh(first.json()["refresh_token"]), 400, "invalid_grant")


def test_refresh_rotates_and_replay_revokes_the_family(client: DirectClient, user: BrowserLikeUser) -> None:
    """OAuth 2.1 §4.3.1 on PostgreSQL: rotation, then replay of the old token kills the new one."""
    tokens = client.tokens(user)
    rotated = client.refresh(tokens["refresh_token"])
    assert rotated.status_code == 200
    oauth_error(client.refresh(tokens["refresh_token"]), 400, "invalid_grant")
    oauth_error(client.refresh(rotated.json()["refresh_token"]), 400, "invalid_grant")
