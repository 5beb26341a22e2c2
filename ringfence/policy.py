"""What ringfence derives from the declarations: security schemes, metadata, scope rules (the MCP
annotations, an SDK type, are derived in ringfence/runtime.py).

Each derived surface has exactly one function here, so the wire format and the checks cannot
drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ringfence.declaration import DeclarationError, Scope, ToolSpec
from ringfence.principal import Principal
from ringfence.refusals import InsufficientScope, MissingToken


class ScopeCatalog:
    """The app's declared scopes and what each implies (transitively)."""

    def __init__(self, scopes: Iterable[Scope]) -> None:
        self.scopes: dict[str, Scope] = {}
        for scope in scopes:
            if scope.name in self.scopes:
                raise DeclarationError(f"scope {scope.name!r} is declared twice")
            self.scopes[scope.name] = scope
        for scope in self.scopes.values():
            for implied in scope.implies:
                if implied not in self.scopes:
                    raise DeclarationError(f"scope {scope.name!r} implies undeclared scope {implied!r}")
        self._closure = {name: self._close(name) for name in self.scopes}

    def _close(self, name: str) -> frozenset[str]:
        seen: set[str] = set()
        pending = [name]
        while pending:
            current = pending.pop()
            if current not in seen:
                seen.add(current)
                pending.extend(self.scopes[current].implies)
        return frozenset(seen)

    def expand(self, granted: Iterable[str]) -> frozenset[str]:
        """Granted scopes plus every scope they imply (MCP 2026-07-28: honour scope hierarchies).

        Scopes the app does not declare are kept as they are; they can never satisfy a tool.
        """
        result: set[str] = set()
        for name in granted:
            result |= self._closure.get(name, {name})
        return frozenset(result)

    def check_declared(self, tool: ToolSpec) -> None:
        undeclared = sorted(tool.scopes - self.scopes.keys())
        if undeclared:
            raise DeclarationError(
                f"tool {tool.name!r} uses undeclared scopes {undeclared}; declare them with Scope(...) on the App"
            )

    def supported(self) -> list[str]:
        """RFC 9728 ``scopes_supported``: the declared scopes (never ``offline_access``)."""
        return sorted(self.scopes)


def security_schemes_for(tool: ToolSpec) -> list[dict[str, Any]]:
    """Apps SDK ``securitySchemes`` (SEP-1488): ``noauth`` for public tools, ``oauth2`` with scopes otherwise."""
    if tool.is_public:
        return [{"type": "noauth"}]
    return [{"type": "oauth2", "scopes": sorted(tool.scopes)}]


def tool_meta_for(tool: ToolSpec) -> dict[str, Any]:
    """The tool's ``_meta``: the author's keys plus the derived security schemes."""
    return {**tool.meta, "securitySchemes": security_schemes_for(tool)}


# The ways a user can confirm a call to a confirmed tool (the ``channel`` of its confirmation records).
ELICITATION, HANDLE, PAGE = "elicitation", "handle", "page"


def confirmation_channels(tool: ToolSpec) -> frozenset[str]:
    """How a call to the tool may be confirmed: none for a read or a write that can be undone; every way
    for a destructive tool or an ``irreversible=True`` write, or only the signed-in confirmation page when it
    declares ``confirm="page"`` (a client can answer an elicitation, or press the widget's button, without
    the user; it cannot sign in as the user)."""
    if tool.confirm is None:
        return frozenset()
    if tool.confirm == "page":
        return frozenset({PAGE})
    return frozenset({ELICITATION, HANDLE, PAGE})


# What a tool lets the app do, most consequential first: the consent page says it in these words for
# each scope that unlocks such a tool (``unlocked_by``), the disclosure for each tool.
DELETES, IRREVERSIBLE, ACTS_AS_YOU, ACTS_OUTSIDE, CHANGES, LOOKS_OUTSIDE, READS = (
    "deletes", "irreversible", "acts_as_you", "acts_outside", "changes", "looks_outside", "reads")
POWERS = (DELETES, IRREVERSIBLE, ACTS_AS_YOU, ACTS_OUTSIDE, CHANGES, LOOKS_OUTSIDE, READS)
_SAID = {
    DELETES: ("Lets the app delete your data", " (you confirm each deletion)"),
    IRREVERSIBLE: ("Lets the app do things that cannot be undone", " (you confirm each one)"),
    ACTS_AS_YOU: ("Lets the app use your account where you sign in, as you", ""),
    ACTS_OUTSIDE: ("Lets the app act outside your account (for example, send messages)", ""),
    CHANGES: ("Lets the app change your data", ""),
    LOOKS_OUTSIDE: ("Lets the app look things up outside your account", ""),
    READS: ("Lets the app read your data, not change it", ""),
}


def powers_of(tool: ToolSpec) -> frozenset[str]:
    """What a call to ``tool`` can do, from its declaration: read, change, delete, do what cannot be undone,
    and whether it does so outside the user's account (``open_world``), as the user at their login
    provider (``provider_scopes``)."""
    as_you = {ACTS_AS_YOU} if tool.provider_scopes else set()
    if tool.effect == "read":
        return frozenset({LOOKS_OUTSIDE if tool.open_world else READS, *as_you})
    if tool.effect == "destructive":
        powers = {DELETES}
    else:  # a write that cannot be undone is said as such, not also as an everyday change
        powers = {IRREVERSIBLE if tool.irreversible else CHANGES}
    if tool.open_world:
        powers.add(ACTS_OUTSIDE)
    return frozenset(powers | as_you)


@dataclass(frozen=True)
class Unlocked:
    """One thing granted scopes let the app do, in plain words, and the tools that do it."""

    power: str
    sentence: str
    tools: tuple[str, ...]


def unlocked_by(requested: Iterable[str], catalog: ScopeCatalog,
                tools: Iterable[ToolSpec]) -> dict[str, tuple[Unlocked, ...]]:
    """For each requested scope, what it lets the app do, most consequential first.

    The requested scopes are granted together, with every scope they imply, so a tool counts when all
    its scopes are granted; it is said under each requested scope whose implied scopes include one of
    them (``contacts:write`` implying ``contacts:read`` speaks for the read tools too). "Read, not
    change" is said only of a scope that unlocks no change; a scope that unlocks no tool says nothing.
    A confirmation is promised only when every such tool is confirmed (``confirmation_channels``).
    """
    requested = sorted(set(requested) & catalog.scopes.keys())
    granted = catalog.expand(requested)
    usable = [tool for tool in tools if not tool.is_public and tool.scopes <= granted]
    result: dict[str, tuple[Unlocked, ...]] = {}
    for name in requested:
        reach = catalog.expand([name])
        by_power: dict[str, list[ToolSpec]] = {}
        for tool in usable:
            if tool.scopes & reach:
                for power in powers_of(tool):
                    by_power.setdefault(power, []).append(tool)
        if set(by_power) - {READS, LOOKS_OUTSIDE, ACTS_AS_YOU}:  # it changes something: "not change it" is false
            by_power.pop(READS, None)
        said = []
        for power in POWERS:
            if power in by_power:
                text, confirmed = _SAID[power]
                if confirmed and not all(confirmation_channels(tool) for tool in by_power[power]):
                    confirmed = ""
                said.append(Unlocked(power, text + confirmed, tuple(sorted(t.name for t in by_power[power]))))
        result[name] = tuple(said)
    return result


def scopes_beyond(requested: Iterable[str], catalog: ScopeCatalog, tools: Iterable[ToolSpec]) -> frozenset[str]:
    """The scopes the app's tools need that ``requested`` (with what it implies) does not grant, leaving out
    a scope implied by another one of them: what the consent page offers besides the request.

    A client whose step-up only refreshes its token (the TypeScript SDK 1.x: typescript-sdk#2255) never
    reaches a tool it did not ask for first, since a refresh cannot widen the grant (RFC 6749 §6); the
    person can grant these at the first consent instead, or untick them.
    """
    granted = catalog.expand(requested)
    missing = {scope for tool in tools if not tool.is_public for scope in tool.scopes} - granted
    return frozenset(scope for scope in missing
                     if not any(scope in catalog.expand([other]) and other not in catalog.expand([scope])
                                for other in missing))


@dataclass(frozen=True)
class ToolScopes:
    """The consent page's view of the app's tools: what requested scopes let the app do (``unlocked_by``)
    and which further scopes the tools need (``scopes_beyond``)."""

    catalog: ScopeCatalog
    tools: tuple[ToolSpec, ...]

    def unlocks(self, requested: Iterable[str]) -> dict[str, tuple[Unlocked, ...]]:
        return unlocked_by(requested, self.catalog, self.tools)

    def beyond(self, requested: Iterable[str]) -> frozenset[str]:
        return scopes_beyond(requested, self.catalog, self.tools)


def default_scopes(tools: Iterable[ToolSpec]) -> frozenset[str]:
    """The app's minimal scopes, granted when a client asks for none: those its read tools need."""
    return frozenset(scope for tool in tools if tool.effect == "read" for scope in tool.scopes)


def provider_access(tools: Iterable[ToolSpec]) -> dict[str, frozenset[str]]:
    """What the app's tools act with at each login provider (``provider_scopes=``): the sign-in there asks
    for all of it, and the person's tokens are kept for them."""
    access: dict[str, frozenset[str]] = {}
    for tool in tools:
        for provider, scopes in tool.provider_scopes.items():
            access[provider] = access.get(provider, frozenset()) | scopes
    return access


def authorize(tool: ToolSpec, principal: Principal | None, catalog: ScopeCatalog) -> None:
    """Refuse the call unless the principal holds every scope the tool declares.

    The refusal's ``scope`` lists the relevant granted scopes plus the required ones, so that a
    client that does not accumulate scopes itself keeps what it had (MCP 2025-11-25 step-up).
    """
    if tool.is_public:
        return
    if principal is None:
        raise MissingToken(f"Sign in to use {tool.name}.", scopes=tool.scopes)
    if tool.scopes <= principal.scopes:
        return
    relevant_granted = principal.scopes & catalog.scopes.keys()
    raise InsufficientScope(
        f"{tool.name} needs scope {' '.join(sorted(tool.scopes - principal.scopes))}.",
        scopes=relevant_granted | tool.scopes,
    )


def tools_by_name(tools: Iterable[ToolSpec]) -> Mapping[str, ToolSpec]:
    result: dict[str, ToolSpec] = {}
    for tool in tools:
        if tool.name in result:
            raise DeclarationError(f"tool {tool.name!r} is declared twice")
        result[tool.name] = tool
    return result
