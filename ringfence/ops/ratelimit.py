"""Rate limits on tool calls (MCP: servers MUST rate limit tool invocations), and the in-process backend.

The algorithm is GCRA, the generic cell rate algorithm (ITU-T I.371), which decides exactly as a
token bucket does while storing one number per key: the *theoretical arrival time* (TAT) of the
next call. All arithmetic is in whole microseconds, so a burst boundary is exact rather than
subject to floating-point drift, and the Redis backend (:mod:`ringfence.ops.ratelimit_redis`)
computes the very same decisions.
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ringfence.refusals import Refusal

MICROSECONDS = 1_000_000


@dataclass(frozen=True)
class Rate:
    """``limit`` calls per ``period`` seconds sustained, with up to ``burst`` (default ``limit``) at once.

    One call is allowed every ``period / limit`` seconds; an idle key saves up to ``burst`` calls.
    """

    limit: int
    period: float
    burst: int | None = None
    # Derived once: the GCRA emission interval (µs between calls at the sustained rate) and the
    # delay-variation tolerance (how far ahead of now a key's TAT may run).
    interval_us: int = field(init=False, repr=False, compare=False)
    tolerance_us: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.limit, int) or self.limit < 1:
            raise ValueError(f"Rate limit must be a positive integer, not {self.limit!r}")
        if not self.period > 0:
            raise ValueError(f"Rate period must be positive seconds, not {self.period!r}")
        if self.burst is not None and (not isinstance(self.burst, int) or self.burst < 1):
            raise ValueError(f"Rate burst must be a positive integer, not {self.burst!r}")
        interval = round(self.period * MICROSECONDS / self.limit)
        if interval < 1:
            raise ValueError(f"Rate {self.limit}/{self.period}s is over one call per microsecond")
        object.__setattr__(self, "interval_us", interval)
        object.__setattr__(self, "tolerance_us", self.capacity * interval)

    @property
    def capacity(self) -> int:
        """The burst: calls an idle key may make at once."""
        return self.limit if self.burst is None else self.burst


@dataclass(frozen=True)
class Decision:
    """The answer for one call: ``retry_after`` seconds to wait when refused; ``remaining`` calls allowed now."""

    allowed: bool
    retry_after: float
    remaining: int

    @property
    def retry_after_header(self) -> str:
        """The ``Retry-After`` value for a refusal: whole seconds, rounded up (RFC 9110 §10.2.3)."""
        return str(math.ceil(self.retry_after))


UNLIMITED = Decision(allowed=True, retry_after=0.0, remaining=sys.maxsize)
"""The decision when no key applies to a call."""


class RateLimitUnavailable(Refusal):
    """The rate-limit store could not be asked in time. The call is refused (503), never let through."""

    status = 503
    error = "temporarily_unavailable"
    retry_after = "1"


class RateLimiter(Protocol):
    """Where budgets are kept. Both methods spend ``cost`` only when the whole call is allowed."""

    async def hit(self, key: str, rate: Rate, cost: int = 1) -> Decision:
        """Spend ``cost`` from ``key``'s budget if it has that much left."""
        ...

    async def hit_all(self, keys: Sequence[tuple[str, Rate]], cost: int = 1) -> Decision:
        """Spend ``cost`` from every key's budget if each has that much left, else from none."""
        ...

    async def refund_all(self, keys: Sequence[tuple[str, Rate]], cost: int = 1) -> None:
        """Give ``cost`` back to every key's budget: spent on something that turned out not to count."""
        ...


def check_request(keys: Sequence[tuple[str, Rate]], cost: int) -> None:
    """Refuses arguments no backend could answer sensibly (a programming error, not a refusal)."""
    if not isinstance(cost, int) or cost < 1:
        raise ValueError(f"cost must be a positive integer, not {cost!r}")
    names = [key for key, _ in keys]
    if len(set(names)) != len(names):
        raise ValueError(f"each key may appear once per call: {names}")
    for key, rate in keys:
        if cost > rate.capacity:
            raise ValueError(f"cost {cost} exceeds the burst of {key!r} ({rate.capacity}): it could never pass")


MAX_READABLE_KEY = 100
_READABLE_KEY = re.compile(r"[A-Za-z0-9._:@/+=\-]+")


def storage_key(key: str) -> str:
    """The key as stored: readable when short and plain, otherwise its SHA-256 (bounded size, no odd bytes)."""
    if len(key) <= MAX_READABLE_KEY and _READABLE_KEY.fullmatch(key):
        return "k:" + key
    return "h:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class InProcessRateLimiter:
    """Exact GCRA in this process's memory: O(1) per key and call, at most ``max_keys`` keys held.

    A key whose TAT has passed holds no information and is dropped as it is met; past ``max_keys``
    the least recently used key is forgotten (it starts again with a full burst), so spraying
    keys costs the attacker calls and never grows memory. Each process counts only the calls it
    serves: use :class:`~ringfence.ops.ratelimit_redis.RedisRateLimiter` behind several workers.
    """

    def __init__(self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self._clock = clock
        self._tats: OrderedDict[str, int] = OrderedDict()  # storage key -> TAT (µs), least recently used first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tats)

    async def hit(self, key: str, rate: Rate, cost: int = 1) -> Decision:
        return await self.hit_all([(key, rate)], cost)

    async def hit_all(self, keys: Sequence[tuple[str, Rate]], cost: int = 1) -> Decision:
        check_request(keys, cost)
        if not keys:
            return UNLIMITED
        with self._lock:
            now = round(self._clock() * MICROSECONDS)
            wait = 0
            remaining = sys.maxsize
            updates = []
            for key, rate in keys:
                name = storage_key(key)
                tat = max(self._tats.get(name, now), now)
                new_tat = tat + cost * rate.interval_us
                allow_at = new_tat - rate.tolerance_us
                if allow_at > now:
                    wait = max(wait, allow_at - now)
                    remaining = min(remaining, max(0, (now - tat + rate.tolerance_us) // rate.interval_us))
                else:
                    remaining = min(remaining, (now - allow_at) // rate.interval_us)
                updates.append((name, new_tat))
            if wait:
                for name, _ in updates:
                    self._touch(name)  # a throttled key stays the most recently used: it must not be forgotten
                return Decision(allowed=False, retry_after=wait / MICROSECONDS, remaining=remaining)
            for name, new_tat in updates:
                self._tats[name] = new_tat
                self._tats.move_to_end(name)
            self._evict(now)
            return Decision(allowed=True, retry_after=0.0, remaining=remaining)

    async def refund_all(self, keys: Sequence[tuple[str, Rate]], cost: int = 1) -> None:
        check_request(keys, cost)
        with self._lock:
            now = round(self._clock() * MICROSECONDS)
            for key, rate in keys:
                name = storage_key(key)
                if name not in self._tats:
                    continue
                tat = self._tats[name] - cost * rate.interval_us
                if tat > now:
                    self._tats[name] = tat
                else:
                    del self._tats[name]  # a full budget again: as if the key had never been seen

    def _touch(self, name: str) -> None:
        if name in self._tats:
            self._tats.move_to_end(name)

    def _evict(self, now: int) -> None:
        """Drops the oldest entries while they are expired (at most two per call), then any over the cap."""
        for _ in range(2):
            oldest = next(iter(self._tats))
            if self._tats[oldest] > now:
                break
            del self._tats[oldest]
            if not self._tats:
                return
        while len(self._tats) > self.max_keys:
            self._tats.popitem(last=False)
