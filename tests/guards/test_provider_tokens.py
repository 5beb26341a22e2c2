"""A tool's reach to the caller's login-provider token, in-process (guards/wrapper.py, principal.py).

Only a tool that declares ``provider_scopes=`` is given a source of tokens, only for the caller of the
call it runs, with the scopes it declared; a result that carries a token the call was handed is
withheld. The source here is a stand-in for the embedded authorization server's sealed store
(authserver/provider_tokens.py), which tests/login/test_provider_tokens.py exercises end to end.
"""

from __future__ import annotations

import anyio
import pytest
from mcp.types import CallToolResult

from ringfence import App, Principal, ProviderToken, Scope, current_principal
from ringfence.guards.wrapper import guard_tool
from ringfence.principal import authorized

CALLER = Principal("person-1", "client-1", frozenset({"notes:read"}), "https://app.example")
SOMEONE_ELSE = Principal("person-2", "client-1", frozenset({"notes:read"}), "https://app.example")


class Tokens:
    """Hands out one token per request and remembers who asked for what."""

    def __init__(self) -> None:
        self.asked: list[tuple[Principal, str, frozenset[str]]] = []

    async def token_for(self, principal: Principal, provider: str, scopes: frozenset[str]) -> ProviderToken:
        self.asked.append((principal, provider, scopes))
        return ProviderToken(provider, f"secret-token-of-{principal.subject}", scopes, None)


def acting_app() -> App:
    app = App("notes", scopes=[Scope("notes:read", "Read notes")])

    @app.tool(effect="read", scopes=["notes:read"], provider_scopes={"corp": ["notes:read", "profile"]})
    async def uses_token() -> str:
        token = await current_principal().provider_token("corp")
        return f"called with a token of {len(token.access_token)} characters"

    @app.tool(effect="read", scopes=["notes:read"], provider_scopes={"corp": ["notes:read"]})
    async def leaks_token() -> str:
        return "here: " + (await current_principal().provider_token("corp")).access_token

    @app.tool(effect="read", scopes=["notes:read"], provider_scopes={"corp": ["notes:read"]})
    async def asks_for_someone_else() -> str:
        return (await SOMEONE_ELSE.provider_token("corp")).access_token

    @app.tool(effect="read", scopes=["notes:read"], provider_scopes={"corp": ["notes:read"]})
    async def asks_another_provider() -> str:
        return (await current_principal().provider_token("github")).access_token

    @app.tool(effect="read", scopes=["notes:read"])
    async def declares_none() -> str:
        return (await current_principal().provider_token("corp")).access_token

    return app


def call(app: App, name: str, tokens: Tokens | None) -> CallToolResult:
    guarded = guard_tool(app.tools[name], app.catalog, confirmer=None, provider_tokens=tokens)
    with authorized(CALLER, name):  # what the gate binds for a call it let through
        return anyio.run(guarded)


def text(result: CallToolResult) -> str:
    return result.content[0].text  # type: ignore[union-attr]


def test_a_tool_that_declares_provider_scopes_gets_the_callers_token_with_those_scopes() -> None:
    tokens = Tokens()
    result = call(acting_app(), "uses_token", tokens)
    assert result.is_error is False and "called with a token of" in text(result)
    assert tokens.asked == [(CALLER, "corp", frozenset({"notes:read", "profile"}))]


def test_a_result_carrying_the_token_is_withheld_from_the_client() -> None:
    """The output guard redacts what looks like a secret; an opaque token is withheld because it is one."""
    result = call(acting_app(), "leaks_token", Tokens())
    assert result.is_error is True and "withheld" in text(result)
    assert "secret-token-of" not in result.model_dump_json()


@pytest.mark.parametrize("tool", ["asks_for_someone_else", "asks_another_provider", "declares_none"])
def test_a_token_is_refused_to_other_people_other_providers_and_undeclared_tools(tool: str) -> None:
    """Least privilege inside the app: the refusal is the author's bug, answered as a generic failure."""
    tokens = Tokens()
    result = call(acting_app(), tool, tokens)
    assert result.is_error is True and "failed unexpectedly" in text(result)
    assert tokens.asked == []


def test_no_token_outside_a_tool_call() -> None:
    with pytest.raises(LookupError, match="declares no provider_scopes"):
        anyio.run(CALLER.provider_token, "corp")


def test_without_a_source_of_tokens_the_tool_gets_none() -> None:
    """Listing tools (lint, lock, preview) wraps them with no source; ``serve`` refuses to run them so."""
    app = acting_app()
    guarded = guard_tool(app.tools["uses_token"], app.catalog, confirmer=None)
    with authorized(CALLER, "uses_token"):
        result = anyio.run(guarded)
    assert result.is_error is True and "failed unexpectedly" in text(result)


def test_the_token_is_left_out_of_its_repr() -> None:
    assert "secret" not in repr(ProviderToken("corp", "secret-value", frozenset({"a"}), 1))
