"""ringfence.policy: what is derived from the declarations (scope closure, annotations, schemes, the scope check)."""

from __future__ import annotations

import pytest

from ringfence.declaration import DeclarationError, Scope, declare_tool
from ringfence.policy import (
    ScopeCatalog,
    authorize,
    security_schemes_for,
    tool_meta_for,
    tools_by_name,
)
from ringfence.principal import Principal
from ringfence.refusals import InsufficientScope, MissingToken
from ringfence.runtime import annotations_for

FILES = [
    Scope("files:admin", "Manage your files and sharing", implies=["files:write"]),
    Scope("files:write", "Change your files", implies=["files:read"]),
    Scope("files:read", "See your files"),
    Scope("audit:read", "See the audit log"),
]


def noop() -> None: ...


def tool(effect: str = "read", **kwargs: object):  # type: ignore[no-untyped-def]
    return declare_tool(noop, effect=effect, **kwargs)


def principal(*scopes: str) -> Principal:
    return Principal(subject="user-1", client_id="client-1", scopes=frozenset(scopes), issuer="https://idp.test")


# ScopeCatalog ---------------------------------------------------------------------------------


def test_expand_follows_implications_transitively() -> None:
    """MCP 2026-07-28: servers MUST honour scope hierarchies; admin ⊃ write ⊃ read."""
    catalog = ScopeCatalog(FILES)
    assert catalog.expand(["files:admin"]) == {"files:admin", "files:write", "files:read"}
    assert catalog.expand(["files:write"]) == {"files:write", "files:read"}
    assert catalog.expand(["files:read"]) == {"files:read"}


def test_expand_keeps_undeclared_granted_scopes_without_implying_anything() -> None:
    """Scopes the app does not declare (``openid``, another API's) pass through and grant nothing more."""
    assert ScopeCatalog(FILES).expand(["openid", "files:read"]) == {"openid", "files:read"}


def test_expand_terminates_on_an_implication_cycle() -> None:
    """Two scopes implying each other are simply equivalent, not an infinite loop."""
    catalog = ScopeCatalog([Scope("a:x", "A", implies=["b:x"]), Scope("b:x", "B", implies=["a:x"])])
    assert catalog.expand(["a:x"]) == {"a:x", "b:x"}


def test_implying_an_undeclared_scope_is_a_declaration_error() -> None:
    """An implication must name a declared scope, or a typo would silently grant nothing."""
    with pytest.raises(DeclarationError, match="implies undeclared scope 'files:raed'"):
        ScopeCatalog([Scope("files:write", "Change your files", implies=["files:raed"])])


def test_declaring_a_scope_twice_is_a_declaration_error() -> None:
    """One scope, one description: two would make the consent page ambiguous."""
    with pytest.raises(DeclarationError, match="declared twice"):
        ScopeCatalog([Scope("files:read", "See your files"), Scope("files:read", "See all files")])


def test_a_tool_using_an_undeclared_scope_is_a_declaration_error() -> None:
    """Every scope a tool needs must be in ``scopes_supported``, or no client could ever obtain it."""
    with pytest.raises(DeclarationError, match=r"undeclared scopes \['files:delete'\]"):
        ScopeCatalog(FILES).check_declared(tool("destructive", scopes=["files:delete"]))


def test_supported_scopes_are_the_declared_ones_sorted() -> None:
    """RFC 9728 ``scopes_supported``: exactly the declared scopes."""
    assert ScopeCatalog(FILES).supported() == ["audit:read", "files:admin", "files:read", "files:write"]


# annotations_for --------------------------------------------------------------------------------


@pytest.mark.parametrize(("effect", "read_only", "destructive", "idempotent"), [
    ("read", True, False, True),
    ("write", False, False, False),
    ("destructive", False, True, False),
])
def test_annotations_follow_the_effect(effect: str, read_only: bool, destructive: bool, idempotent: bool) -> None:
    """MCP ToolAnnotations: all four hints set explicitly, from effect= alone."""
    hints = annotations_for(tool(effect))
    assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint, hints.open_world_hint) == (
        read_only, destructive, idempotent, False)


def test_declared_idempotence_and_open_world_override_the_defaults() -> None:
    """A write that can be repeated safely, reaching beyond the user's account (e.g. sends e-mail)."""
    hints = annotations_for(tool("write", idempotent=True, open_world=True))
    assert hints.idempotent_hint is True
    assert hints.open_world_hint is True


def test_annotations_serialize_all_four_hints_on_the_wire() -> None:
    """Apps SDK rejects tools with missing hints: the camelCase wire form carries every one."""
    wire = annotations_for(tool("read", title="Find")).model_dump(by_alias=True, exclude_none=True)
    assert wire == {"title": "Find", "readOnlyHint": True, "destructiveHint": False, "idempotentHint": True,
                    "openWorldHint": False}


# security_schemes_for / tool_meta_for -------------------------------------------------------------


def test_public_tool_has_the_noauth_scheme() -> None:
    """Apps SDK securitySchemes (SEP-1488): a tool without scopes is ``noauth``."""
    assert security_schemes_for(tool("read")) == [{"type": "noauth"}]


def test_protected_tool_has_the_oauth2_scheme_with_its_scopes() -> None:
    """Apps SDK securitySchemes: ``oauth2`` with the tool's scopes, sorted."""
    assert security_schemes_for(tool("write", scopes=["files:write", "audit:read"])) == [
        {"type": "oauth2", "scopes": ["audit:read", "files:write"]}]


def test_tool_meta_keeps_the_authors_keys_and_adds_the_schemes() -> None:
    """Author ``_meta`` (e.g. a file parameter list) survives next to the derived ``securitySchemes``."""
    meta = tool_meta_for(tool("read", meta={"openai/fileParams": ["upload"]}))
    assert meta == {"openai/fileParams": ["upload"], "securitySchemes": [{"type": "noauth"}]}


# authorize ---------------------------------------------------------------------------------------


def test_public_tool_is_authorized_for_anyone() -> None:
    """A tool without scopes needs no principal."""
    authorize(tool("read"), None, ScopeCatalog(FILES))


def test_protected_tool_without_principal_is_missing_token_with_the_tool_scopes() -> None:
    """RFC 6750 §3.1: the refusal carries no error code and names the scopes to request."""
    with pytest.raises(MissingToken) as refused:
        authorize(tool("read", scopes=["files:read"]), None, ScopeCatalog(FILES))
    assert refused.value.error == ""
    assert refused.value.scopes == ("files:read",)


def test_insufficient_scope_lists_relevant_granted_plus_required_scopes() -> None:
    """MCP 2025-11-25 step-up: keep the declared scopes already granted; drop unrelated ones (openid)."""
    catalog = ScopeCatalog(FILES)
    granted = principal(*catalog.expand(["files:read", "openid"]))
    with pytest.raises(InsufficientScope) as refused:
        authorize(tool("write", scopes=["files:write"]), granted, catalog)
    assert refused.value.status == 403
    assert refused.value.scopes == ("files:read", "files:write")
    assert "files:write" in refused.value.description


def test_a_tool_needing_two_scopes_requires_both() -> None:
    """``scopes=`` are all required (AND)."""
    catalog = ScopeCatalog(FILES)
    with pytest.raises(InsufficientScope):
        authorize(tool("read", scopes=["files:read", "audit:read"]), principal("files:read"), catalog)
    authorize(tool("read", scopes=["files:read", "audit:read"]), principal("files:read", "audit:read"), catalog)


def test_tools_by_name_refuses_duplicate_names() -> None:
    """MCP tool names are unique per server."""
    with pytest.raises(DeclarationError, match="declared twice"):
        tools_by_name([tool("read"), tool("write")])
