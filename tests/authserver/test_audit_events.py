"""The authorization server's audit records: registrations, consents, sign-in and token failures, key rotations.

Issue #5 item 5: "authentication failures, ... consents and revocations, registrations, ... key
rotations" are each one record in the hash chain, with no secret in the payload.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.support.oauth import BrowserLikeUser, DirectClient, EmbeddedServer, audit_records, hidden_fields
from tests.support.serve import REPO, server_env

pytestmark = pytest.mark.usefixtures("no_server_errors")


@pytest.fixture(scope="module")
def client(embedded: EmbeddedServer) -> DirectClient:
    return DirectClient.register(embedded.issuer, embedded.mcp_url, client_name="Audited Client")


@pytest.fixture(scope="module")
def user(embedded: EmbeddedServer) -> Iterator[BrowserLikeUser]:
    person = BrowserLikeUser(embedded.issuer, embedded.account)
    yield person
    person.close()


def test_a_registration_is_recorded_with_the_client_id(embedded: EmbeddedServer, client: DirectClient) -> None:
    registered = [r for r in audit_records(embedded, "--kind", "client.registered")
                  if r["payload"]["client_id"] == client.client_id]
    assert len(registered) == 1
    assert registered[0]["outcome"] == "registered"
    assert "client_secret" not in json.dumps(registered)


def test_a_consent_and_its_revocation_are_recorded_for_the_user(embedded: EmbeddedServer, client: DirectClient,
                                                                user: BrowserLikeUser) -> None:
    tokens = client.tokens(user, scope="contacts:read")
    granted = [r for r in audit_records(embedded, "--kind", "consent.granted")
               if r["payload"]["client_id"] == client.client_id]
    assert len(granted) == 1
    assert granted[0]["payload"]["scopes"] == ["contacts:read"]
    subject = granted[0]["principal"]
    assert subject not in ("(anonymous)", embedded.account.username)  # the opaque token subject, not the name

    account = user.http.get(f"{embedded.issuer}/account")
    revoked = user.http.post(f"{embedded.issuer}/account/revoke",
                             data={**hidden_fields(account.text), "client_id": client.client_id})
    assert revoked.status_code in (200, 303)
    revocations = [r for r in audit_records(embedded, "--kind", "consent.revoked", "--principal", subject)
                   if r["payload"]["client_id"] == client.client_id]
    assert [r["outcome"] for r in revocations] == ["revoked"]
    assert tokens["refresh_token"] not in json.dumps(audit_records(embedded))


def test_a_wrong_password_is_recorded_as_a_sign_in_failure(embedded: EmbeddedServer) -> None:
    before = len(audit_records(embedded, "--kind", "auth.failure", "--outcome", "login_failed"))
    with httpx.Client(base_url=embedded.issuer, timeout=10) as browser:
        page = browser.get("/login")
        browser.post("/login", data={**hidden_fields(page.text), "username": embedded.account.username,
                                     "password": "not-the-password-Zx9!"})
    failures = audit_records(embedded, "--kind", "auth.failure", "--outcome", "login_failed")
    assert len(failures) == before + 1
    assert failures[-1]["payload"]["stage"] == "login"
    assert "not-the-password" not in json.dumps(failures)


def test_a_refused_token_request_is_recorded_as_an_authentication_failure(embedded: EmbeddedServer,
                                                                         client: DirectClient) -> None:
    response = client.redeem("no-such-code", "v" * 43)
    assert response.status_code == 400
    refused = [r for r in audit_records(embedded, "--kind", "auth.failure", "--outcome", "invalid_grant")
               if r["payload"].get("client_id") == client.client_id]
    assert refused and refused[-1]["payload"]["stage"] == "token"
    assert "no-such-code" not in json.dumps(refused)


def test_a_key_rotation_is_recorded(embedded: EmbeddedServer) -> None:
    rotated = subprocess.run(
        [sys.executable, "-m", "ringfence", "keys", "rotate", "--data-dir", str(embedded.data_dir)],
        capture_output=True, text=True, cwd=REPO, env=server_env(), timeout=60, check=False,
    )
    assert rotated.returncode == 0, rotated.stderr
    kid = rotated.stdout.split()[3].rstrip(";")
    records = audit_records(embedded, "--kind", "key.rotated")
    assert records[-1]["principal"] == "(operator)"
    assert records[-1]["payload"]["kid"] == kid
