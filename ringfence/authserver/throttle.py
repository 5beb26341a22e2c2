"""Sliding-window counters: login failures per account and per address, registrations per address."""

from __future__ import annotations

import time
from collections import defaultdict, deque


class SlidingWindow:
    """After ``limit`` events for a key within ``window`` seconds, that key waits until the oldest expires.

    In-process state: each instance counts the requests it serves.
    """

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[str, deque[float]] = defaultdict(deque)

    def retry_after(self, *keys: str) -> int | None:
        """Seconds to wait before the next event for any of ``keys``, or ``None`` to proceed."""
        now = time.monotonic()
        waits = []
        for key in keys:
            events = self._prune(key, now)
            if len(events) >= self.limit:
                waits.append(int(events[0] + self.window - now) + 1)
        return max(waits) if waits else None

    def record(self, *keys: str) -> None:
        now = time.monotonic()
        for key in keys:
            self._prune(key, now).append(now)

    def reset(self, key: str) -> None:
        self._events.pop(key, None)

    def _prune(self, key: str, now: float) -> deque[float]:
        events = self._events[key]
        while events and events[0] <= now - self.window:
            events.popleft()
        return events
