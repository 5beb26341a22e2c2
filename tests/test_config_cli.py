"""`ringfence serve` refuses unsafe or broken configurations in one line; without --issuer it trusts only itself.

The refused start-ups run at once, as forks of one process that did the slow imports (see
tests/support/cli.py); each test reads its own outcome.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.support.cli import Outcome, run_ringfence_many
from tests.support.http import challenge, tool_result
from tests.support.idp import TestIdentityProvider, free_port
from tests.support.serve import CONTACTS_APP, ServeProcess

APP_WITHOUT_EFFECT = '''
from ringfence import App, Scope
app = App("broken", scopes=[Scope("notes:read", "Read your notes")])

@app.tool(scopes=["notes:read"])
def list_notes() -> list[str]:
    return []
'''
APP_WITH_UNDECLARED_SCOPE = '''
from ringfence import App, Scope
app = App("broken", scopes=[Scope("notes:read", "Read your notes")])

@app.tool(effect="destructive", scopes=["notes:delete"])
def delete_note(note_id: int) -> str:
    return "deleted"
'''
APP_RAISING_AT_IMPORT = '''
raise RuntimeError("the app module failed while importing")
'''

# case: (serve arguments after the target, extra environment); "{tmp}" is the module's folder.
REFUSED = {
    "public_url_trailing_slash": ([CONTACTS_APP, "--public-url", "https://mcp.example.test/"], {}),
    "public_url_plain_http": ([CONTACTS_APP, "--public-url", "http://mcp.example.test"], {}),
    "issuer_without_keys": ([CONTACTS_APP, "--issuer", "https://idp.example.test"], {}),
    "unknown_env_var": ([CONTACTS_APP], {"RINGFENCE_FOO": "1"}),
    "unknown_option": ([CONTACTS_APP, "--no-such-option"], {}),
    "missing_target": (["{tmp}/does_not_exist.py"], {}),
    "tool_without_effect": (["{tmp}/no_effect.py"], {}),
    "undeclared_scope": (["{tmp}/undeclared_scope.py"], {}),
    "app_raising_at_import": (["{tmp}/raises.py"], {}),
    "unreachable_database": ([CONTACTS_APP, "--database-url", "postgresql+asyncpg://postgres@127.0.0.1:1/ringfence"],
                             {}),
}


@pytest.fixture(scope="module")
def launched_without_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """The reference app with no --issuer, launched (not yet ready) so it boots while the refusals run."""
    data = tmp_path_factory.mktemp("no-issuer")
    server = ServeProcess(CONTACTS_APP, "--data-dir", str(data)).launch(data)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def refused(tmp_path_factory: pytest.TempPathFactory, launched_without_issuer: ServeProcess) -> dict[str, Outcome]:
    """Start every REFUSED case at once; wait for each to exit."""
    tmp = tmp_path_factory.mktemp("refused")
    (tmp / "no_effect.py").write_text(APP_WITHOUT_EFFECT)
    (tmp / "undeclared_scope.py").write_text(APP_WITH_UNDECLARED_SCOPE)
    (tmp / "raises.py").write_text(APP_RAISING_AT_IMPORT)
    cases = {name: (["serve", *(arg.format(tmp=tmp) for arg in args), "--port", str(free_port()),
                     "--data-dir", str(tmp / name)], env) for name, (args, env) in REFUSED.items()}
    return run_ringfence_many(cases, tmp)


def assert_refused_in_one_line(outcome: Outcome, *, says: str) -> None:
    """Exit status non-zero, nothing served, exactly one stderr line ``ringfence: error: ...``, no traceback."""
    assert outcome.returncode not in (None, 0), f"did not refuse to start: {outcome}"
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, f"{len(lines)} lines on stderr, first and last:\n{lines[0]}\n...\n{lines[-1]}"
    assert lines[0].startswith("ringfence: error: ")
    assert says in lines[0]
    assert "Traceback" not in outcome.stderr + outcome.stdout


def test_public_url_with_trailing_slash_is_refused(refused: dict[str, Outcome]) -> None:
    """RFC 9728 §3.3: ``resource`` is compared byte for byte; .../mcp after a '/' would never match."""
    assert_refused_in_one_line(refused["public_url_trailing_slash"], says="ends with '/'")


def test_plain_http_public_url_on_a_non_loopback_host_is_refused(refused: dict[str, Outcome]) -> None:
    """OAuth 2.1 §1.5: https everywhere except loopback; tokens would otherwise cross the network in clear."""
    assert_refused_in_one_line(refused["public_url_plain_http"], says="plain http")


def test_issuer_without_jwks_or_introspection_url_is_refused(refused: dict[str, Outcome]) -> None:
    """An issuer with no way to check its tokens could only accept or refuse everything: neither is intended."""
    assert_refused_in_one_line(refused["issuer_without_keys"], says="--jwks-url")


def test_unknown_ringfence_environment_variable_is_refused(refused: dict[str, Outcome]) -> None:
    """A misspelt setting (RINGFENCE_FOO) must not be silently ignored."""
    assert_refused_in_one_line(refused["unknown_env_var"], says="RINGFENCE_FOO")


def test_unknown_option_is_a_usage_error(refused: dict[str, Outcome]) -> None:
    """Click's usage error: exit status 2, names the option, no traceback."""
    outcome = refused["unknown_option"]
    assert outcome.returncode == 2
    assert "No such option" in outcome.stderr
    assert "--no-such-option" in outcome.stderr
    assert "Traceback" not in outcome.stderr + outcome.stdout


def test_missing_target_file_is_refused(refused: dict[str, Outcome]) -> None:
    """The operator learns which file was not found."""
    assert_refused_in_one_line(refused["missing_target"], says="does_not_exist.py")


def test_tool_without_effect_is_refused(refused: dict[str, Outcome]) -> None:
    """Every tool declares its effect: the annotations and the consent prompts are derived from it."""
    assert_refused_in_one_line(refused["tool_without_effect"], says="effect")


def test_tool_with_undeclared_scope_is_refused(refused: dict[str, Outcome]) -> None:
    """A scope the metadata does not advertise could never be granted to a client."""
    assert_refused_in_one_line(refused["undeclared_scope"], says="notes:delete")


def test_app_module_raising_at_import_is_refused_in_one_line(refused: dict[str, Outcome]) -> None:
    """An error in the app's own code is reported, not dumped as a traceback."""
    assert_refused_in_one_line(refused["app_raising_at_import"], says="the app module failed while importing")


def test_unreachable_database_is_refused_in_one_line(refused: dict[str, Outcome]) -> None:
    """A database that cannot be reached at start-up is an operator error like the others: one line, no traceback."""
    assert_refused_in_one_line(refused["unreachable_database"], says="database")


# No --issuer: the embedded authorization server is the only trusted issuer ---------------------


@pytest.fixture(scope="module")
def no_issuer(launched_without_issuer: ServeProcess) -> ServeProcess:
    return launched_without_issuer.wait_ready()


def test_start_up_log_names_the_embedded_authorization_server(no_issuer: ServeProcess) -> None:
    """The operator is told, at start-up, which issuer the server trusts: without --issuer, its own origin."""
    # The log pseudonymises IP addresses, loopback ones included: the port names this server.
    assert re.search(rf"embedded authorization server at http://\S+:{no_issuer.port} ", no_issuer.logs())


def test_without_issuer_tokens_from_an_outside_issuer_are_refused_with_401(no_issuer: ServeProcess,
                                                                           idp: TestIdentityProvider) -> None:
    """OAuth 2.1 §5.2: only the configured issuer is trusted; a well-formed token from another is invalid."""
    token = idp.token(no_issuer.mcp_url, scope="contacts:read contacts:write")
    response = no_issuer.call_tool("search_contacts", {"query": "ann"}, token=token)
    assert response.status_code == 401
    assert challenge(response)["error"] == "invalid_token"


def test_without_issuer_no_token_is_refused_with_401(no_issuer: ServeProcess) -> None:
    """RFC 6750 §3.1: the usual challenge, with the scope the tool needs."""
    response = no_issuer.call_tool("delete_contact", {"contact_id": 1})
    assert response.status_code == 401
    assert challenge(response) == {"scope": "contacts:write", "resource_metadata": no_issuer.metadata_url}


def test_without_issuer_public_tools_still_work(no_issuer: ServeProcess) -> None:
    """Public (``noauth``) tools need no token."""
    assert tool_result(no_issuer.call_tool("app_info"))["isError"] is False


@pytest.mark.parametrize("origin", ["null", "*", "http://localhost:6274/", "https://app.example.com/path",
                                    "http://app.example.com", "not a url"])
def test_an_allowed_origin_that_is_not_an_exact_origin_stops_start_up(origin: str) -> None:
    """Allowed origins may read /token and /register answers (CORS): "null", "*", paths and plain http are refused."""
    from ringfence.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="allowed origin"):
        Settings.load(allowed_origins=(origin,))


def test_the_preview_token_in_the_shell_is_not_an_unknown_serve_setting(monkeypatch) -> None:
    """`ringfence preview` reads RINGFENCE_PREVIEW_TOKEN; a shell that also runs `serve` may hold it."""
    from ringfence.config import Settings

    monkeypatch.setenv("RINGFENCE_PREVIEW_TOKEN", "token-for-preview")
    assert Settings.load().port  # loads; no "unknown setting"
