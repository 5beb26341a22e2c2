"""How login providers are configured, and the configurations ``ringfence serve`` refuses to start with."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.oauth import hidden_fields, ringfence_cli
from tests.support.serve import CONTACTS_APP, ServeProcess

ISSUER = "https://idp.example.com"


def serve_refuses(*args: str) -> str:
    done = ringfence_cli("serve", CONTACTS_APP, *args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


@pytest.mark.parametrize(("spec", "says"), [
    (f"issuer={ISSUER},client-id=a,client-secret=hunter2,allowed-domain=example.com", "never given on the command"),
    (f"issuer={ISSUER},client-id=a,client-secret-env=NO_SUCH_VARIABLE_SET", "say who may sign in"),
    (f"issuer={ISSUER},client-id=a,client-secret-env=NO_SUCH_VARIABLE_SET,allowed-domain=example.com",
     "client secret is empty"),
    ("issuer=http://idp.example.com,client-id=a,client-secret-env=X,allowed-domain=example.com", "an https URL"),
    (f"issuer={ISSUER}/,client-id=a,client-secret-env=X,allowed-domain=example.com", "trailing '/'"),
    (f"issuer={ISSUER},client-id=a,client-secret-env=X,allowed-org=acme", "allowed-org= is for github"),
    (f"issuer={ISSUER},client-secret-env=X,allowed-domain=example.com", "give client-id="),
    ("client-id=a,client-secret-env=X,allowed-domain=example.com", "give issuer="),
    (f"issuer={ISSUER},client-id=a,client-secret-env=X,allowed-domain=not a domain", "not a domain name"),
    (f"issuer={ISSUER},client-id=a,client-secret-env=X,allow-any-account=maybe", "yes or no"),
    (f"issuer={ISSUER},client-id=a,client-secret-env=X,colour=blue", "is not one of"),
    (f"github,issuer={ISSUER},client-id=a,client-secret-env=X,allowed-org=acme", "not an OpenID provider"),
    ("github,client-id=a,client-secret-env=X,allowed-org=not/an/org", "not a GitHub organisation"),
])
def test_a_login_provider_that_is_not_fully_and_safely_declared_stops_start_up(spec: str, says: str,
                                                                               tmp_path: Path) -> None:
    assert says in serve_refuses("--login-provider", spec, "--data-dir", str(tmp_path))


def test_turning_passwords_off_needs_a_login_provider(tmp_path: Path) -> None:
    assert "nobody can sign in" in serve_refuses("--no-local-passwords", "--data-dir", str(tmp_path))


def test_a_login_provider_is_for_the_embedded_authorization_server(tmp_path: Path) -> None:
    said = serve_refuses("--issuer", ISSUER, "--jwks-url", f"{ISSUER}/jwks", "--data-dir", str(tmp_path),
                         "--login-provider", f"issuer={ISSUER},client-id=a,client-secret-env=X,allow-any-account=yes")
    assert "embedded authorization server" in said


def test_two_providers_with_one_name_are_refused(tmp_path: Path) -> None:
    spec = f"issuer={ISSUER},client-id=a,client-secret-file={tmp_path / 's'},allowed-domain=example.com"
    (tmp_path / "s").write_text("secret")
    assert "named 'example'" in serve_refuses("--login-provider", spec, "--login-provider", spec,
                                             "--data-dir", str(tmp_path))


def test_with_passwords_off_the_page_offers_the_providers_only_and_no_first_user_is_made(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cret")
    spec = f"name=corp,label=Example Corp,issuer={ISSUER},client-id=a,client-secret-file={tmp_path / 'secret'}," \
           "allow-any-account=yes"
    server = ServeProcess(CONTACTS_APP, "--data-dir", str(tmp_path), "--login-provider", spec,
                          "--no-local-passwords").start(tmp_path)
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as browser:
            page = browser.get("/login")
            assert "Continue with Example Corp" in page.text and 'name="password"' not in page.text
            posted = browser.post("/login", data={**hidden_fields(page.text), "username": "owner",
                                                  "password": "whatever-it-is"})
            assert posted.status_code == 403 and "Passwords are turned off" in posted.text
    finally:
        server.stop()
    logs = server.logs()
    assert "created the first user" not in logs
    assert "sign-in with Example Corp (https://idp.example.com) for any account of the provider" in logs
    assert "local passwords are turned off" in logs
    # Admitting every account of a provider is named for what it gives up, at start-up.
    assert "UNSAFE option enabled: login provider corp admits every account it signs in" in logs
    assert "s3cret" not in logs


def test_starting_a_sign_in_is_refused_with_503_when_the_throttle_cannot_answer(tmp_path: Path) -> None:
    """Fail closed: with the shared rate limiter (Redis) down, no sign-in attempt is stored unthrottled."""
    (tmp_path / "secret").write_text("s3cret")
    spec = f"name=corp,issuer={ISSUER},client-id=a,client-secret-file={tmp_path / 'secret'},allow-any-account=yes"
    server = ServeProcess(CONTACTS_APP, "--data-dir", str(tmp_path), "--login-provider", spec,
                          "--redis-url", "redis://127.0.0.1:1/0").start(tmp_path)
    try:
        refused = httpx.get(f"{server.base_url}/login/corp?next=/account", timeout=15)
    finally:
        server.stop()
    assert refused.status_code == 503 and "Sign-in is unavailable right now" in refused.text
    assert "location" not in refused.headers
