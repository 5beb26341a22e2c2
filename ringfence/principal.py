"""The verified caller of a tool, and what the gate authorized it to call. Tool code reads the
caller; it never sees a token."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


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
