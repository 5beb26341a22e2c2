"""The verified caller of a tool, and what the gate authorized it to call. Tool code reads the
caller; it never sees the caller's token. A tool that declares ``provider_scopes=`` may read the
person's token at that login provider, to act for them there (:meth:`Principal.provider_token`)."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol


def identity_key(issuer: str, subject: str) -> str:
    """The one key for a person everywhere ringfence keys state by who it is (confirmations, rate
    budgets, session bounds): the token's issuer and subject. Never the e-mail, never the client."""
    return f"{issuer}|{subject}"


@dataclass(frozen=True)
class Principal:
    """Who is calling, as established by a verified access token."""

    subject: str
    client_id: str | None
    scopes: frozenset[str]
    issuer: str
    expires_at: int | None = None

    def has_scopes(self, required: frozenset[str]) -> bool:
        return required <= self.scopes

    @property
    def key(self) -> str:
        """Who this is, whichever client calls for them: :func:`identity_key`."""
        return identity_key(self.issuer, self.subject)

    async def provider_token(self, provider: str) -> ProviderToken:
        """This person's access token at the login provider ``provider``, for the tool now running to call
        the provider's API as them; refreshed first when it is about to expire.

        Only a tool that declares ``provider_scopes={provider: [...]}`` may ask, only for the caller of the
        call it runs, and the token never leaves in its result (the call's result is withheld if it does).
        Raises ``LookupError`` when the tool declared no scopes there; :class:`ringfence.ToolError` (its
        message for the person: sign in at the provider again, or try later) when there is no usable token.
        """
        access = _acting.get()
        if access is None or provider not in access.scopes:
            tool = access.tool if access is not None else current_authorization().tool or "code outside a tool"
            raise LookupError(f"{tool} declares no provider_scopes for login provider {provider!r}")
        if access.source is None:
            raise LookupError("login-provider tokens are kept by the embedded authorization server only, when "
                              "served with --login-provider")
        if current_authorization().principal != self:
            raise LookupError("a provider token is only for the caller of the tool call now running")
        token = await access.source.token_for(self, provider, access.scopes[provider])
        access.handed_out.append(token.access_token)
        return token


@dataclass(frozen=True)
class ProviderToken:
    """A person's access token at a login provider (RFC 6750 bearer), with what it was granted."""

    provider: str
    access_token: str = field(repr=False)
    scopes: frozenset[str] = frozenset()
    expires_at: int | None = None  # seconds since the epoch; None: the provider did not say

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value for the provider's API."""
        return f"Bearer {self.access_token}"


class ProviderTokenSource(Protocol):
    """Where provider tokens come from (the embedded authorization server keeps them, encrypted)."""

    async def token_for(self, principal: Principal, provider: str, scopes: frozenset[str]) -> ProviderToken: ...


@dataclass(frozen=True)
class ProviderAccess:
    """What one call of a tool with ``provider_scopes=`` may read, bound by the tool wrapper around it."""

    tool: str
    scopes: Mapping[str, frozenset[str]]
    source: ProviderTokenSource | None  # none outside ``ringfence serve`` (lint, lock, preview list tools only)
    handed_out: list[str] = field(default_factory=list)  # the tokens given to this call, kept out of its result


_acting: contextvars.ContextVar[ProviderAccess | None] = contextvars.ContextVar("ringfence_provider_access",
                                                                              default=None)


@contextmanager
def acting_at(access: ProviderAccess | None) -> Iterator[ProviderAccess | None]:
    """The author's code run inside may read provider tokens as ``access`` allows (none when ``None``)."""
    token = _acting.set(access)
    try:
        yield access
    finally:
        _acting.reset(token)


@dataclass(frozen=True)
class Authorization:
    """What the gate decided for one request: who is calling, and the one tool it may call (if any).

    The gate binds it before anything of the MCP SDK or the author runs; the tool wrapper and the
    confirmation resolver refuse a call that does not carry one for their tool (fail closed).
    """

    principal: Principal | None
    tool: str | None = None
    openai_host: bool = False  # the call's ``_meta`` is ChatGPT's (``openai/*``): it shows widgets


_NOBODY = Authorization(None)
_current: contextvars.ContextVar[Authorization] = contextvars.ContextVar("ringfence_authorization", default=_NOBODY)


def current_principal() -> Principal:
    """The verified caller of the tool now running.

    Raises ``LookupError`` when the call carried no token (only possible in a public tool);
    use :func:`optional_principal` there.
    """
    principal = _current.get().principal
    if principal is None:
        raise LookupError("this call is anonymous: no verified principal")
    return principal


def optional_principal() -> Principal | None:
    """The verified caller, or ``None`` for an anonymous call to a public tool."""
    return _current.get().principal


def current_authorization() -> Authorization:
    """What the gate authorized for the request in progress (nobody, no tool, outside one)."""
    return _current.get()


@contextmanager
def authorized(principal: Principal | None, tool: str | None = None, *,
               openai_host: bool = False) -> Iterator[Authorization]:
    """Bind the gate's decision for the code run inside (it follows the request into the SDK's tasks)."""
    decision = Authorization(principal, tool, openai_host)
    token = _current.set(decision)
    try:
        yield decision
    finally:
        _current.reset(token)
