"""What a login provider's answers must be before anyone is signed in, against a stand-in told to get
them wrong (a correct provider never would: tests/support/login_standin.py), and GitHub's flow, whose
real endpoints cannot be reached from here.

Every refusal is a page that says the sign-in did not succeed (403), or that the provider cannot be
used right now (503); why is written to the log and the audit log, never to the page.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.idp import free_port
from tests.support.login import ProviderUser
from tests.support.login_standin import CLIENT, LoginStandIn
from tests.support.oauth import EmbeddedServer, audit_records, query_of, start_embedded


@pytest.fixture(scope="module")
def server(standin: LoginStandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    data_dir = tmp_path_factory.mktemp("standin")
    secret = data_dir / "client.secret"
    secret.write_text(CLIENT[1])
    openid = (f"name=standin,label=Stand-in,issuer={standin.issuer},client-id={CLIENT[0]},"
              f"client-secret-file={secret},allowed-domain=example.com")
    github = (f"github,client-id={CLIENT[0]},client-secret-env=STANDIN_GITHUB_SECRET,allowed-org=acme,"
              f"github-url={standin.github_url},github-api-url={standin.github_api_url}")
    running = start_embedded(data_dir, "--login-provider", openid, "--login-provider", github, port=free_port(),
                             env={"STANDIN_GITHUB_SECRET": CLIENT[1]})
    yield running
    running.stop()
    assert "Traceback" not in running.logs()


@pytest.fixture(autouse=True)
def a_correct_provider(standin: LoginStandIn) -> None:
    standin.be()


def sign_in(standin: LoginStandIn, server: EmbeddedServer, provider: str = "standin"):  # type: ignore[no-untyped-def]
    return ProviderUser(standin.issuer, "").go(f"{server.issuer}/login/{provider}?next=/account")


def test_a_correct_answer_signs_in_and_the_request_carried_pkce_state_and_nonce(standin: LoginStandIn,
                                                                                server: EmbeddedServer) -> None:
    account = sign_in(standin, server)
    assert account.status_code == 200 and "standin:carol@example.com" in account.text
    sent = standin.requests[-1]
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43  # RFC 7636 §4.2
    assert len(sent["state"]) >= 32 and len(sent["nonce"]) >= 32
    assert set(sent["scope"].split()) == {"openid", "email", "profile"}
    assert sent["redirect_uri"] == f"{server.issuer}/login/standin/callback"


@pytest.mark.parametrize("fault", [
    "aud",  # §3.1.3.7 (3): aud must contain the client
    "no_azp",  # (4): several audiences, and no azp naming the client
    "azp",  # (5): azp names another client
    "nonce",  # (11): the nonce sent
    "no_nonce",
    "iss",  # (2): exactly the provider's issuer
    "expired",  # (9)
    "alg_none",  # (6, 7): signed, by the provider's published keys, with an asymmetric algorithm
    "hs256",
    "other_key",
    "response_iss",  # RFC 9207 §2.4: the authorization response names another provider (mix-up)
    "userinfo_sub",  # §5.3.2: userinfo about someone else
])
def test_an_answer_that_does_not_check_out_signs_no_one_in(standin: LoginStandIn, server: EmbeddedServer,
                                                           fault: str) -> None:
    """OpenID Connect Core §3.1.3.7: each rule of ID token validation, one at a time."""
    standin.faults = {fault}
    refused = sign_in(standin, server)
    assert refused.status_code == 403, refused.text[:300]
    assert "did not succeed" in refused.text and "access_denied" in refused.text
    assert "standin-user-1" not in refused.text and "Traceback" not in refused.text
    reasons = [record["payload"].get("reason", "") for record in
               audit_records(server, "--kind", "auth.failure", "--outcome", "login_refused", "--newest-first",
                             "--limit", "1")]
    assert reasons, "no auth.failure record"


@pytest.mark.parametrize("fault", ["down", "discovery_issuer"])
def test_a_provider_that_cannot_be_used_refuses_everyone_with_a_503(standin: LoginStandIn, tmp_path,  # type: ignore[no-untyped-def]
                                                                    fault: str) -> None:
    """OpenID Connect Discovery §4.3: a document naming another issuer is not this provider's."""
    standin.faults = {fault}
    secret = tmp_path / "secret"
    secret.write_text(CLIENT[1])
    fresh = start_embedded(tmp_path, "--login-provider",  # a new server: nothing discovered yet
                           f"name=standin,issuer={standin.issuer},client-id={CLIENT[0]},client-secret-file={secret},"
                           "allow-any-account=yes")
    try:
        page = ProviderUser(standin.issuer, "").http.get(f"{fresh.issuer}/login/standin?next=/account")
        assert page.status_code == 503 and "not possible right now" in page.text
    finally:
        fresh.stop()


def test_a_re_sign_in_for_deletion_must_be_fresh(standin: LoginStandIn, server: EmbeddedServer) -> None:
    """max_age=0 (OpenID Connect Core §3.1.2.1): an auth_time from before the request deletes nothing."""
    user = ProviderUser(standin.issuer, "")
    user.go(f"{server.issuer}/login/standin?next=/account")
    page = user.http.get(f"{server.issuer}/account/delete")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    sent = user.http.post(f"{server.issuer}/account/delete", data={"csrf": csrf})
    assert query_of(sent.headers["location"])["max_age"] == "0"
    standin.faults = {"stale_auth_time"}
    refused = user.follow(sent)
    assert refused.status_code == 403
    assert "standin:carol@example.com" in user.http.get(f"{server.issuer}/account").text  # still there


def test_github_signs_in_a_member_of_an_allowed_organisation_by_its_numeric_id(standin: LoginStandIn,
                                                                               server: EmbeddedServer) -> None:
    first = sign_in(standin, server, "github")
    assert first.status_code == 200 and "github:carol" in first.text
    sent = standin.requests[-1]
    assert set(sent["scope"].split()) == {"read:user", "user:email", "read:org"} and sent["allow_signup"] == "false"
    standin.be(login="carol-renamed")  # the same GitHub id under a new login: the same account
    again = sign_in(standin, server, "github")
    assert "github:carol" in again.text


def test_github_refuses_someone_outside_the_organisations(standin: LoginStandIn, server: EmbeddedServer) -> None:
    standin.be(github_id=777, login="outsider", orgs=("other-org",))
    refused = sign_in(standin, server, "github")
    assert refused.status_code == 403 and "may not sign in" in refused.text


def test_starting_sign_ins_is_limited_per_address(standin: LoginStandIn, server: EmbeddedServer) -> None:
    """Each start stores a pending attempt: thirty per address in ten minutes, then 429 with Retry-After."""
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.9"), timeout=10) as browser:
        answers = [browser.get(f"{server.issuer}/login/standin?next=/account") for _ in range(31)]
    assert [answer.status_code for answer in answers[:30]] == [303] * 30
    assert answers[30].status_code == 429 and int(answers[30].headers["retry-after"]) > 0
    assert "Too many sign-ins" in answers[30].text
