"""How login providers are configured, and the configurations ``ringfence serve`` refuses to start with.

Each refused specification is checked where ``serve`` checks it, in this process (the parse
functions, the settings' check); two refusals go through a real ``ringfence serve`` end to end: exit
status 2, the reason on standard error, no traceback, for a bad specification and for a bad setting.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ringfence.authserver.login_providers import parse_login_provider, parse_login_providers
from ringfence.config import ConfigError, Settings
from tests.support.oauth import hidden_fields, ringfence_cli
from tests.support.serve import CONTACTS_APP, ServeProcess

ISSUER = "https://idp.example.com"


def serve_refuses(*args: str) -> str:
    done = ringfence_cli("serve", CONTACTS_APP, *args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


def parse_refuses(*specs: str) -> str:
    """Why the specifications are refused, as ``serve`` would parse them."""
    with pytest.raises(ConfigError) as refused:
        if len(specs) == 1:
            parse_login_provider(specs[0])
        else:
            parse_login_providers(specs)
    return str(refused.value)


@pytest.fixture
def no_secrets_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables the specifications name are unset, as in the ``serve`` child's environment."""
    for name in ("X", "NO_SUCH_VARIABLE_SET"):
        monkeypatch.delenv(name, raising=False)


def test_a_client_secret_on_the_command_line_stops_start_up(tmp_path: Path) -> None:
    """End to end: a refused specification stops ``ringfence serve`` with exit 2 and the reason."""
    spec = f"issuer={ISSUER},client-id=a,client-secret=hunter2,allowed-domain=example.com"
    said = serve_refuses("--login-provider", spec, "--data-dir", str(tmp_path))
    assert "never given on the command" in said and "hunter2" not in said


@pytest.mark.usefixtures("no_secrets_in_environment")
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
def test_a_login_provider_that_is_not_fully_and_safely_declared_stops_start_up(spec: str, says: str) -> None:
    said = parse_refuses(spec)
    assert says in said
    assert "hunter2" not in said


def test_turning_passwords_off_needs_a_login_provider(tmp_path: Path) -> None:
    """End to end: a refused setting stops ``ringfence serve`` with exit 2 and the reason."""
    assert "nobody can sign in" in serve_refuses("--no-local-passwords", "--data-dir", str(tmp_path))


def test_a_login_provider_is_for_the_embedded_authorization_server(tmp_path: Path) -> None:
    settings = Settings(issuer=ISSUER, jwks_url=f"{ISSUER}/jwks", data_dir=tmp_path,
                        login_providers=(f"issuer={ISSUER},client-id=a,client-secret-env=X,allow-any-account=yes",))
    with pytest.raises(ConfigError, match="embedded authorization server"):
        settings.check()


def test_two_providers_with_one_name_are_refused(tmp_path: Path) -> None:
    spec = f"issuer={ISSUER},client-id=a,client-secret-file={tmp_path / 's'},allowed-domain=example.com"
    (tmp_path / "s").write_text("secret")
    assert "named 'example'" in parse_refuses(spec, spec)


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
