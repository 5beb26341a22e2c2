"""Bounded sliding windows: "has KEY been seen COUNT times within WINDOW seconds?" in O(1) memory per key.

An attacker can make up keys (addresses, client ids), so the number of keys tracked is capped:
past the cap the least recently seen key is forgotten. Forgetting only ever delays an alert.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable


class SlidingWindowCounter:
    """Counts hits per key within the last ``window`` seconds; reports when ``threshold`` is reached.

    Each key keeps at most ``threshold`` timestamps (older ones cannot matter), and at most
    ``max_keys`` keys are kept, least recently hit evicted first.
    """

    def __init__(self, threshold: int, window: float, max_keys: int, clock: Callable[[], float]) -> None:
        if threshold < 1 or window <= 0 or max_keys < 1:
            raise ValueError("threshold and max_keys must be at least 1, window positive")
        self.threshold = threshold
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def hit(self, key: str) -> int:
        """Record one hit for ``key``; the number of hits within the window, at most ``threshold``."""
        now = self.clock()
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque(maxlen=self.threshold)
            if len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        hits.append(now)
        self._expire(hits, now)
        return len(hits)

    def count(self, key: str) -> int:
        """Hits for ``key`` within the window, without recording one."""
        hits = self._hits.get(key)
        if hits is None:
            return 0
        self._expire(hits, self.clock())
        return len(hits)

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)

    def __len__(self) -> int:
        return len(self._hits)

    def _expire(self, hits: deque[float], now: float) -> None:
        while hits and hits[0] <= now - self.window:
            hits.popleft()


class Cooldown:
    """Lets each key through once per ``seconds``; remembers at most ``max_keys`` keys."""

    def __init__(self, seconds: float, max_keys: int, clock: Callable[[], float]) -> None:
        self.seconds = seconds
        self.max_keys = max_keys
        self.clock = clock
        self._last: OrderedDict[str, float] = OrderedDict()

    def ready(self, key: str) -> bool:
        """True (and the cooldown starts) unless ``key`` was let through less than ``seconds`` ago."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.seconds:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        if len(self._last) > self.max_keys:
            self._last.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._last)
