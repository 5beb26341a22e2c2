"""Binds MCP session ids to the principal that uses them (MCP 2025-11-25 security best practices).

The SDK's own binding refuses a session created anonymously once a token appears, which breaks
the normal linking flow (list tools anonymously, sign in, call a protected tool). Here an
anonymous session may be claimed once by a signed-in principal; after that only that principal
may use it, and a session is never handed from one principal to another or back to anonymous.
Sessions are never authentication: every request's token is verified on its own.
"""

from __future__ import annotations

from collections import OrderedDict

from ringfence.principal import Principal

Owner = tuple[str, str, str] | None  # (issuer, subject, client id), or None for anonymous


def owner_of(principal: Principal | None) -> Owner:
    if principal is None:
        return None
    return (principal.issuer, principal.subject, principal.client_id or "")


class SessionOwners:
    """Session id → owner, for the sessions this process created; the oldest are forgotten past ``limit``."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._owners: OrderedDict[str, Owner] = OrderedDict()

    def admit(self, session_id: str, owner: Owner) -> bool:
        """May ``owner`` use this session? An anonymous session is claimed by its first principal."""
        if session_id not in self._owners:
            return True  # unknown here: the SDK answers 404 for sessions it does not have
        current = self._owners[session_id]
        if current == owner:
            return True
        if current is None and owner is not None:
            self._owners[session_id] = owner
            return True
        return False

    def created(self, session_id: str, owner: Owner) -> None:
        self._owners[session_id] = owner
        while len(self._owners) > self.limit:
            self._owners.popitem(last=False)
