"""The verified caller of a tool. Tool code reads it; it never sees a token."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


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


_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("ringfence_principal", default=None)


def current_principal() -> Principal:
    """The verified caller of the tool now running.

    Raises ``LookupError`` when the call carried no token (only possible in a public tool);
    use :func:`optional_principal` there.
    """
    principal = _current.get()
    if principal is None:
        raise LookupError("this call is anonymous: no verified principal")
    return principal


def optional_principal() -> Principal | None:
    """The verified caller, or ``None`` for an anonymous call to a public tool."""
    return _current.get()


def bind_principal(principal: Principal | None) -> contextvars.Token[Principal | None]:
    return _current.set(principal)


def unbind_principal(token: contextvars.Token[Principal | None]) -> None:
    _current.reset(token)
