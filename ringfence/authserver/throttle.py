"""Throttles of the sign-in form and of open client registration, on the shared rate limiter.

They count in the same :class:`~ringfence.ops.ratelimit.RateLimiter` as tool calls: in this
process by default, in Redis when ``--redis-url`` is set, so that several instances enforce one
combined limit. Each attempt spends from its budgets *before* the work (atomically, so parallel
guesses cannot all slip past a check), and a sign-in that succeeds gives its attempt back: only
failures count (OWASP authentication cheat sheet: protect against automated attacks). When the
limiter cannot answer, :class:`~ringfence.ops.ratelimit.RateLimitUnavailable` is raised and the
attempt must be refused: fail closed.
"""

from __future__ import annotations

import logging

from starlette.requests import Request

from ringfence.ops.ratelimit import Decision, Rate, RateLimiter, RateLimitUnavailable
from ringfence.ops.ratelimit_keys import address_bucket

logger = logging.getLogger("ringfence.authserver")

# Five failed sign-ins per account and per address, then one every three minutes.
SIGN_IN_RATE = Rate(limit=5, period=900)
# Open registration (RFC 7591, which MCP clients use): thirty per address an hour.
REGISTRATION_RATE = Rate(limit=30, period=3600)


def address_key(request: Request) -> str:
    """The source address as throttles count it: IPv6 by its /64, the block one host gets."""
    return f"ip:{address_bucket(request.client.host if request.client else None)}"


class Throttle:
    """Attempts per key against ``rate``, keyed apart from tool-call budgets by ``name``."""

    def __init__(self, limiter: RateLimiter, rate: Rate, name: str) -> None:
        self.limiter = limiter
        self.rate = rate
        self.name = name

    def _keys(self, keys: tuple[str, ...]) -> list[tuple[str, Rate]]:
        return [(f"{self.name}:{key}", self.rate) for key in keys]

    async def attempt(self, *keys: str) -> Decision:
        """Spend one attempt from every key, or from none when one is used up (then ``allowed`` is false)."""
        return await self.limiter.hit_all(self._keys(keys))

    async def give_back(self, *keys: str) -> None:
        """Return an attempt that turned out not to count. If the limiter cannot answer, it stays spent."""
        try:
            await self.limiter.refund_all(self._keys(keys))
        except RateLimitUnavailable:
            logger.warning("could not give back a %s attempt: the rate limiter did not answer", self.name)
