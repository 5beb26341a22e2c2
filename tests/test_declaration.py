"""ringfence.declaration and App.tool: declarations that cannot be made safe are refused when declared."""

from __future__ import annotations

import pytest

from ringfence import App, DeclarationError, Scope
from ringfence.declaration import declare_tool
from ringfence.runtime import mcp_server_for
from ringfence.serving import serving


def noop() -> None: ...


# Scope ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "files read", 'files"read', "files\\read", "fichiers:lïre", "tab\there", 42])
def test_scope_name_must_be_an_oauth_scope_token(name: object) -> None:
    """RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), no space, quote or backslash."""
    with pytest.raises(DeclarationError, match="not a valid OAuth scope token"):
        Scope(name, "A description")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["files:read", "https://api.example.com/files.read", "read",
                                  "a!#$%&'()*+,-./[]^_`{|}~"])
def test_scope_tokens_in_the_allowed_alphabet_are_accepted(name: str) -> None:
    """RFC 6749 §3.3: URIs and punctuation other than space, ``"`` and ``\\`` are valid scope tokens."""
    assert Scope(name, "A description").name == name


@pytest.mark.parametrize("name", ["offline_access", "openid"])
def test_reserved_scopes_cannot_be_declared(name: str) -> None:
    """MCP 2025-11-25: offline_access is a refresh-token request, never a resource scope (nor is openid)."""
    with pytest.raises(DeclarationError, match="reserved"):
        Scope(name, "A description")


@pytest.mark.parametrize("description", ["", "   "])
def test_scope_needs_a_description_for_the_consent_page(description: str) -> None:
    """The consent page shows each scope's sentence: the user must know what they grant."""
    with pytest.raises(DeclarationError, match="description"):
        Scope("files:read", description)


# Tools -------------------------------------------------------------------------------------------


def test_effect_is_required() -> None:
    """Annotations and consent are derived from the effect; there is no safe default."""
    app = App("notes")
    with pytest.raises(DeclarationError, match="must declare effect="):
        app.tool()(noop)


@pytest.mark.parametrize("typo", ["scope", "effects", "confirmation"])
def test_an_unknown_declaration_keyword_is_refused_naming_the_known_ones(typo: str) -> None:
    """`scope=` for `scopes=` would otherwise declare a public tool: a typo must not loosen a tool."""
    app = App("notes", scopes=[Scope("notes:read", "Read your notes")])
    with pytest.raises(DeclarationError, match=f"unknown declaration {typo}; a tool declares effect, scopes"):
        app.tool(effect="read", **{typo: ["notes:read"]})(noop)


def test_declaring_a_tool_leaves_the_app_unserved_and_its_database_unavailable() -> None:
    """The declaration holds no runtime: the database exists only while a runtime serves the app."""
    app = App("notes")
    app.tool(effect="read")(noop)
    with pytest.raises(RuntimeError, match="only while the app is served"):
        app.database  # noqa: B018


def test_serving_binds_the_database_for_the_block_only_and_once() -> None:
    app, database = App("notes"), object()
    with serving(app, database):  # type: ignore[arg-type]
        assert app.database is database
        with pytest.raises(RuntimeError, match="already being served"), serving(app, object()):  # type: ignore[arg-type]
            pass
        assert app.database is database
    with pytest.raises(RuntimeError, match="only while the app is served"):
        app.database  # noqa: B018


@pytest.mark.parametrize("effect", ["delete", "READ", "", None, True])
def test_effect_must_be_read_write_or_destructive(effect: object) -> None:
    """Exactly three effects, spelt exactly: a typo must not become an unknown, unannotated tool."""
    with pytest.raises(DeclarationError, match="read, write, destructive"):
        declare_tool(noop, effect=effect)


def test_unknown_data_class_is_refused() -> None:
    """``returns=`` feeds the output scan and the privacy disclosure: only known classes."""
    with pytest.raises(DeclarationError, match=r"unknown data classes \['passwords'\]"):
        declare_tool(noop, effect="read", returns=["personal", "passwords"])


@pytest.mark.parametrize("keyword", ["scopes", "returns"])
def test_scopes_and_returns_take_lists_not_a_string(keyword: str) -> None:
    """``scopes="files:read"`` would otherwise become the scopes f, i, l, e, s..."""
    with pytest.raises(DeclarationError, match="take lists, not a string"):
        declare_tool(noop, effect="read", **{keyword: "personal"})


@pytest.mark.parametrize("key", ["securitySchemes", "annotations"])
def test_derived_keys_cannot_be_set_by_hand_in_meta(key: str) -> None:
    """One source of truth: the schemes and annotations come from the declaration only."""
    with pytest.raises(DeclarationError, match="derived from the declaration"):
        declare_tool(noop, effect="read", meta={key: []})


@pytest.mark.parametrize("name", ["has space", "x" * 65, "naïve", "slash/name", "semi;colon"])
def test_tool_name_must_be_short_and_plain(name: str) -> None:
    """MCP tool names: 1-64 characters from letters, digits, ``_``, ``-``, ``.``."""
    with pytest.raises(DeclarationError, match="tool name"):
        declare_tool(noop, effect="read", name=name)


def test_idempotent_defaults_to_true_for_reads_only() -> None:
    """MCP idempotentHint: a read has no effect to repeat; writes are assumed not idempotent unless declared."""
    assert declare_tool(noop, effect="read").idempotent is True
    assert declare_tool(noop, effect="write").idempotent is False
    assert declare_tool(noop, effect="destructive").idempotent is False


def test_a_tool_without_scopes_is_public() -> None:
    """No ``scopes=``: callable without a token (``noauth``); any scope makes it protected."""
    assert declare_tool(noop, effect="read").is_public is True
    assert declare_tool(noop, effect="read", scopes=["files:read"]).is_public is False


def test_app_refuses_a_tool_with_an_undeclared_scope() -> None:
    """Caught when the module is imported, not at the first call."""
    app = App("notes", scopes=[Scope("notes:read", "Read your notes")])
    with pytest.raises(DeclarationError, match="undeclared scopes"):
        app.tool(effect="read", scopes=["notes:write"])(noop)


def test_app_refuses_two_tools_with_the_same_name() -> None:
    """MCP tool names are unique per server: the second declaration would shadow the first."""
    app = App("notes")
    app.tool(effect="read", name="list_notes")(noop)
    with pytest.raises(DeclarationError, match="declared twice"):
        app.tool(effect="write", name="list_notes")(noop)


def test_app_without_tools_cannot_be_served() -> None:
    """An app with nothing to call is a mistake, not a server."""
    with pytest.raises(DeclarationError, match="declares no tools"):
        mcp_server_for(App("empty"))


# provider_scopes (a tool that acts at a login provider as the person) -----------------------------


def test_provider_scopes_are_kept_per_provider() -> None:
    spec = declare_tool(noop, effect="read", scopes=["a:read"], provider_scopes={"github": ["repo", "read:org"]})
    assert spec.provider_scopes == {"github": frozenset({"repo", "read:org"})}
    assert declare_tool(noop, effect="read", scopes=["a:read"]).provider_scopes == {}


@pytest.mark.parametrize("declared", [["repo"], "github", {"GitHub": ["repo"]}, {"git hub": ["repo"]},
                                      {"github": "repo"}, {"github": []}, {"github": ["two words"]}, {3: ["repo"]}])
def test_provider_scopes_must_map_provider_names_to_scope_lists(declared: object) -> None:
    with pytest.raises(DeclarationError, match="provider_scopes"):
        declare_tool(noop, effect="read", scopes=["a:read"], provider_scopes=declared)  # type: ignore[arg-type]


def test_a_public_tool_cannot_act_at_a_provider() -> None:
    with pytest.raises(DeclarationError, match="needs scopes="):
        declare_tool(noop, effect="read", provider_scopes={"github": ["repo"]})


def test_a_tool_that_acts_at_a_provider_is_open_world() -> None:
    """Derived, not repeated: its results come from outside the app (openWorldHint, untrusted marking)."""
    assert declare_tool(noop, effect="read", scopes=["a:read"], provider_scopes={"github": ["repo"]}).open_world
    with pytest.raises(DeclarationError, match="open_world"):
        declare_tool(noop, effect="read", scopes=["a:read"], open_world=False, provider_scopes={"github": ["repo"]})
