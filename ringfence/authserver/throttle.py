"""Throttles of the sign-in form and of open client registration, on the shared rate limiter.

They count in the same :class:`~ringfence.ops.ratelimit.RateLimiter` as tool calls: in this
process by default, in Redis when ``--redis-url`` is set, so that several instances enforce one
combined limit. Each attempt spends from its budgets *before* the work (atomically, so parallel
guesses cannot all slip past a check), and a sign-in that succeeds gives its attempt back: only
failures count (OWASP authentication cheat sheet: protect against automated attacks).

Sign-in throttles the guesser, never the account: failures count per source address and per
address and account, so nobody elsewhere can lock a user out by failing in their name. A guess
spread over many addresses is slowed only by each address's budget (and by the password hash's
cost). Addresses are the client's as ops/proxies.py sets them behind trusted proxies. When the
limiter cannot answer, :class:`~ringfence.ops.ratelimit.RateLimitUnavailable` is raised and the
attempt must be refused: fail closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from starlette.requests import Request

from ringfence.ops.ratelimit import Decision, Rate, RateLimiter, RateLimitUnavailable
from ringfence.ops.ratelimit_keys import address_bucket

logger = logging.getLogger("ringfence.authserver")

# Failed sign-ins: five at one account from one address, then one every three minutes; twenty at
# any accounts from one address (a few people behind one NAT mistyping), then one every 45 seconds.
SIGN_IN_PER_ADDRESS_AND_ACCOUNT = Rate(limit=5, period=900)
SIGN_IN_PER_ADDRESS = Rate(limit=20, period=900)
# Open registration (RFC 7591, which MCP clients use): thirty per address an hour.
REGISTRATION_RATE = Rate(limit=30, period=3600)
# Sign-ins sent to a login provider (each stores one pending attempt): thirty per address in ten minutes.
PROVIDER_SIGN_IN_RATE = Rate(limit=30, period=600)


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


class SignInThrottle(Throttle):
    """Failed password checks per guesser: ``attempt(account, address)`` spends from the address's
    budget and from the budget of that address at that account, never from the account's alone.

    Every allowed attempt must be ended with :meth:`settle`: a success gives its attempt back. An
    attempt refused while this process still checks passwords under the same keys waits (up to
    ``settle_wait`` seconds) for those checks to settle and asks again: concurrent correct sign-ins
    give their attempts back, so they never 429 one another, while failures stay spent and a guesser's
    own parallel guesses still end at the limit. At most ``max_waiting`` attempts wait per address.
    """

    def __init__(self, limiter: RateLimiter, *, settle_wait: float = 10.0, max_waiting: int = 20) -> None:
        super().__init__(limiter, SIGN_IN_PER_ADDRESS, "sign-in")
        self.settle_wait = settle_wait
        self.max_waiting = max_waiting
        self._checking: Counter[str] = Counter()  # key -> password checks in flight in this process
        self._waiting: Counter[str] = Counter()  # address key -> attempts waiting for a check to settle
        self._settled = asyncio.Condition()
        self._settlements = 0  # how many checks have settled: a change means "ask again"

    def _keys(self, keys: tuple[str, ...]) -> list[tuple[str, Rate]]:
        account, address = keys
        return [(f"sign-in:{address}", SIGN_IN_PER_ADDRESS),
                (f"sign-in:{address}|{account}", SIGN_IN_PER_ADDRESS_AND_ACCOUNT)]

    async def attempt(self, *keys: str) -> Decision:
        budgets = self._keys(keys)
        names = [name for name, _ in budgets]
        address = names[0]
        deadline = asyncio.get_running_loop().time() + self.settle_wait
        while True:
            seen = self._settlements
            decision = await self.limiter.hit_all(budgets)
            if decision.allowed:
                self._checking.update(names)
                return decision
            if not any(self._checking[name] for name in names) or self._waiting[address] >= self.max_waiting:
                return decision  # nothing in flight here could give an attempt back
            if self._settlements == seen and not await self._wait_for_settlement(address, seen, deadline):
                return decision

    async def _wait_for_settlement(self, address: str, seen: int, deadline: float) -> bool:
        """Wait until a check settles after ``seen`` (True) or the deadline passes (False)."""
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return False
        self._waiting[address] += 1
        try:
            async with asyncio.timeout(remaining), self._settled:  # not wait_for: see audit/schedule.py
                await self._settled.wait_for(lambda: self._settlements != seen)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiting[address] -= 1
            if not self._waiting[address]:
                del self._waiting[address]

    async def settle(self, account: str, address: str, *, succeeded: bool) -> None:
        """End an allowed attempt: a success gives it back (only failures count), a failure stays spent."""
        try:
            if succeeded:
                await self.give_back(account, address)
        finally:
            names = [name for name, _ in self._keys((account, address))]
            self._checking.subtract(names)
            for name in names:
                if self._checking[name] <= 0:
                    del self._checking[name]
            self._settlements += 1
            async with self._settled:
                self._settled.notify_all()
