"""MCP sessions (2025-era handshake): bound to the principal that uses them, and bounded in number
(MCP 2025-11-25 security best practices: session hijacking; resource exhaustion).

The SDK's own binding refuses a session created anonymously once a token appears, which breaks
the normal linking flow (list tools anonymously, sign in, call a protected tool). Here an
anonymous session may be claimed once by a signed-in principal; after that only that principal
may use it, and a session is never handed from one principal to another or back to anonymous.
Sessions are never authentication: every request's token is verified on its own.

Every new session is counted before the SDK creates it, against its source (an anonymous one
against its address, IPv6 by its /64, and against all anonymous sessions; a signed-in one against
its principal) and against the total, which stays within the SDK's own cap. Over a bound it is
refused: 429 for the source's own bound, 503 for a shared one. Anonymous clients can thus fill
neither the SDK's table nor the room kept for signed-in ones. A binding is forgotten only once the
SDK has forgotten its session (closed, idle, failed), as read from the SDK's table, and a session
id with no binding is refused: no session is ever handed to whoever presents its id first.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

from ringfence.ops.ratelimit_keys import address_bucket
from ringfence.principal import Principal
from ringfence.refusals import RateLimited, Refusal, UnknownSession

Owner = tuple[str, str] | None  # (identity key, client id), or None for anonymous
SWEEP_INTERVAL = 1.0  # seconds: at most one pass over the table for sessions the SDK ended
RETRY_AFTER = "60"


def owner_of(principal: Principal | None) -> Owner:
    if principal is None:
        return None
    return (principal.key, principal.client_id or "")


def source_of(owner: Owner, address: str | None) -> str:
    """Whose bound a session counts against: its principal, or, anonymous, its address."""
    return f"address:{address_bucket(address)}" if owner is None else f"principal:{owner[0]}"


class SessionLimitReached(Refusal):
    """The sessions all clients share are taken: try again later (503)."""

    status = 503
    error = "temporarily_unavailable"
    retry_after = RETRY_AFTER


@dataclass(frozen=True)
class SessionLimits:
    """Sessions open at once: in all (at most the SDK's ``max_sessions``), anonymous ones in all and per
    address, and per signed-in principal."""

    total: int = 10_000
    anonymous: int = 2_500
    anonymous_per_address: int = 100
    per_principal: int = 1_000


@dataclass
class Opening:
    """A session being opened: counted from the start, bound once the SDK names it."""

    owner: Owner
    source: str
    session_id: str | None = None


def sdk_sessions(manager: Any) -> Container[str]:
    """The ids of the sessions the SDK holds. mcp 2.3's ``StreamableHTTPSessionManager`` keeps them in
    ``_server_instances`` (the table its ``max_sessions`` bounds) and drops an id there when the
    session ends. An SDK that keeps them elsewhere stops start-up here, rather than leaving
    bindings that would never be forgotten."""
    live = getattr(manager, "_server_instances", None)
    if not isinstance(live, dict):
        raise RuntimeError("this mcp SDK keeps its sessions where ringfence cannot see them; pin mcp 2.3")
    return live


class SessionOwners:
    """Session id → owner for the sessions the SDK holds, with the counts the bounds are checked on."""

    def __init__(self, live: Container[str], limits: SessionLimits = SessionLimits(), *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._live = live
        self._clock = clock
        self._owners: dict[str, tuple[Owner, str]] = {}  # session id -> (owner, source)
        self._open: Counter[str] = Counter()  # per source: sessions and openings
        self._anonymous = 0
        self._total = 0
        self._swept_at = -SWEEP_INTERVAL

    def __len__(self) -> int:
        return self._total

    def open(self, owner: Owner, address: str | None) -> Opening:
        """Count a new session for ``owner`` from ``address``, or refuse it over a bound."""
        source = source_of(owner, address)
        refusal = self._over_bound(owner, source)
        if refusal is not None:
            self._sweep()
            refusal = self._over_bound(owner, source)
            if refusal is not None:
                raise refusal
        self._count(owner, source, 1)
        return Opening(owner, source)

    def bind(self, opening: Opening, session_id: str) -> None:
        """The SDK opened the session as ``session_id``: bind it to the opening's owner."""
        opening.session_id = session_id
        self._owners[session_id] = (opening.owner, opening.source)

    def abandon(self, opening: Opening) -> None:
        """An opening that did not become a session (refused, failed) is given back; a bound one stays."""
        if opening.session_id is None:
            self._count(opening.owner, opening.source, -1)
            opening.session_id = ""  # given back once

    def holds(self, session_id: str) -> bool:
        """Whether ``session_id`` is bound here (a session the SDK opened and, as far as seen, holds)."""
        return session_id in self._owners

    def admit(self, session_id: str, owner: Owner) -> None:
        """``owner`` may use this session (an anonymous one is claimed by its first principal), or the
        session is refused as if it did not exist."""
        binding = self._owners.get(session_id)
        if binding is None:
            raise UnknownSession("Session not found.")  # never seen, or ended: the SDK holds no session either
        current, source = binding
        if current == owner:
            return
        if current is not None or owner is None:
            raise UnknownSession("Session not found.")
        claimed = source_of(owner, None)
        refusal = self._over_source_bound(owner, claimed)
        if refusal is not None:
            raise refusal
        self._count(None, source, -1)
        self._count(owner, claimed, 1)
        self._owners[session_id] = (owner, claimed)

    def forget_if_ended(self, session_id: str) -> None:
        """After a request in a session: forget it if the SDK has (a DELETE, or an unknown id)."""
        if session_id in self._owners and session_id not in self._live:
            self._forget(session_id)

    # -- the counts ------------------------------------------------------------------------------

    def _over_bound(self, owner: Owner, source: str) -> Refusal | None:
        if self._total >= self.limits.total:
            return SessionLimitReached("The server holds as many sessions as it can; try again later.")
        if owner is None and self._anonymous >= self.limits.anonymous:
            return SessionLimitReached("The server holds as many sessions without sign-in as it can; "
                                       "sign in, or try again later.")
        return self._over_source_bound(owner, source)

    def _over_source_bound(self, owner: Owner, source: str) -> Refusal | None:
        bound = self.limits.anonymous_per_address if owner is None else self.limits.per_principal
        if self._open[source] >= bound:
            who = "your address without sign-in" if owner is None else "this user"
            return RateLimited(f"Too many open sessions from {who}; end one (HTTP DELETE) or try again later.",
                               retry_after=RETRY_AFTER)
        return None

    def _count(self, owner: Owner, source: str, change: int) -> None:
        self._total += change
        if owner is None:
            self._anonymous += change
        self._open[source] += change
        if self._open[source] <= 0:
            del self._open[source]

    def _forget(self, session_id: str) -> None:
        owner, source = self._owners.pop(session_id)
        self._count(owner, source, -1)

    def _sweep(self) -> None:
        """Forget every session the SDK has ended (idle timeouts); at most once per ``SWEEP_INTERVAL``."""
        now = self._clock()
        if now - self._swept_at < SWEEP_INTERVAL:
            return
        self._swept_at = now
        for session_id in [s for s in self._owners if s not in self._live]:
            self._forget(session_id)
