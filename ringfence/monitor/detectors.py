"""Suspicious-activity detectors: sliding-window counts over security events.

Each detector counts one kind of event per key (an address, a client, a principal; a tool, or the
whole server for failures that are nobody's doing) and reports
an :class:`Alert` when a key reaches the detector's threshold within its window. Observing is
O(1) per event and memory is bounded (see :mod:`ringfence.monitor.windows`); what happens to an
alert (cooldown, log, audit, webhook) is :mod:`ringfence.monitor.alerts`'s job.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ringfence.audit.records import EventKind
from ringfence.events import ANONYMOUS, SecurityEvent
from ringfence.monitor.windows import SlidingWindowCounter

AUTH_FAILURE_BURST = "auth_failure_burst"
SCOPE_PROBING = "scope_probing"
DECLINED_CONFIRMATIONS = "declined_confirmations"
INJECTION_HITS = "injection_hits"
BULK_READ_THEN_OPEN_WORLD = "bulk_read_then_open_world"
CALL_VOLUME = "call_volume"
TOOL_FAILURES = "tool_failures"  # one tool failing, whoever calls it
SERVER_ERRORS = "server_errors"  # 5xx answers, whole server
RATE_LIMIT_STORM = "rate_limit_storm"  # 429s to one caller (principal, else address) or one client
RATE_LIMIT_STORM_TOTAL = "rate_limit_storm_total"  # 429s to everyone together
DETECTORS = (AUTH_FAILURE_BURST, SCOPE_PROBING, DECLINED_CONFIRMATIONS, INJECTION_HITS, BULK_READ_THEN_OPEN_WORLD,
             CALL_VOLUME, TOOL_FAILURES, SERVER_ERRORS, RATE_LIMIT_STORM, RATE_LIMIT_STORM_TOTAL)
# Observed only (never audited): an HTTP answer with a 5xx status, told by the request metrics.
SERVER_ERROR = "http.server_error"
# tool.call outcomes that mean the tool failed: it raised ToolError ("error") or anything else ("failed").
FAILED_OUTCOMES = frozenset({"error", "failed", "timeout"})
# Keys that name no one (a declared tool, the whole server): shown as they are, not as a keyed hash.
PUBLIC_KEY_KINDS = frozenset({"tool", "server"})
WHOLE_SERVER = "all"
# A declined confirmation is told twice (confirmation.declined, then tool.call "declined"); within
# this many seconds, for the same principal and tool, the second is the same decline.
SAME_DECLINE_SECONDS = 5.0
MAX_KEY_CHARS = 128


@dataclass(frozen=True)
class Threshold:
    """Alert when one key is seen ``count`` times within ``window_seconds`` (``count`` 0: off)."""

    count: int
    window_seconds: int


@dataclass(frozen=True)
class Alert:
    """A detector's threshold reached by one key. ``key`` is raw here; it is pseudonymized before it leaves."""

    detector: str
    key_kind: str  # "address", "client", "principal"; or "tool", "server" (PUBLIC_KEY_KINDS)
    key: str
    count: int
    threshold: Threshold
    principal: str = ANONYMOUS  # whom the audit record is about

    def document(self, pseudonym: Callable[[str], str]) -> dict[str, Any]:
        """The alert without raw personal data: a key naming a caller becomes a keyed hash."""
        key = self.key if self.key_kind in PUBLIC_KEY_KINDS else pseudonym(self.key)
        return {
            "detector": self.detector,
            "key": f"{self.key_kind}:{key}",
            "count": self.count,
            "threshold": self.threshold.count,
            "window_seconds": self.threshold.window_seconds,
        }


class SuspiciousActivity:
    """The detectors, as one event observer; ``report`` receives each alert (synchronously, must not block)."""

    def __init__(self, thresholds: dict[str, Threshold], report: Callable[[Alert], None], *,
                 max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.thresholds = thresholds
        self.report = report
        self.max_keys = max_keys
        self.clock = clock
        self._counters: dict[tuple[str, str], SlidingWindowCounter] = {}
        self._recent_declines: OrderedDict[tuple[str, str | None], float] = OrderedDict()

    def observe(self, event: SecurityEvent) -> None:
        """Count the event against every detector it concerns (an :class:`~ringfence.events.EventObserver`)."""
        kind, details = str(event.kind), event.details
        if kind == EventKind.AUTH_FAILURE:
            self._hit(AUTH_FAILURE_BURST, "address", event.address, event)
            self._hit(AUTH_FAILURE_BURST, "client", event.client_id, event)
        elif kind == EventKind.SCOPE_REFUSED:
            self._hit(SCOPE_PROBING, *_caller(event), event)
            self._hit(SCOPE_PROBING, "client", event.client_id, event)
        elif kind == EventKind.CONFIRMATION_DECLINED:
            self._remember_decline(event)
            self._hit(DECLINED_CONFIRMATIONS, *_caller(event), event)
        elif kind == EventKind.INJECTION_FLAGGED:
            self._hit(INJECTION_HITS, *_caller(event), event)
        elif kind == EventKind.TOOL_CALL:
            self._tool_call(event, details)
        elif kind == EventKind.RATE_LIMITED:
            self._hit(RATE_LIMIT_STORM, *_caller(event), event)
            self._hit(RATE_LIMIT_STORM, "client", event.client_id, event)
            self._hit(RATE_LIMIT_STORM_TOTAL, "server", WHOLE_SERVER, event, about=ANONYMOUS)
        elif kind == SERVER_ERROR:
            self._hit(SERVER_ERRORS, "server", WHOLE_SERVER, event, about=ANONYMOUS)

    def _tool_call(self, event: SecurityEvent, details: Any) -> None:
        key_kind, key = _caller(event)
        self._hit(CALL_VOLUME, key_kind, key, event)
        if event.outcome in FAILED_OUTCOMES:
            self._hit(TOOL_FAILURES, "tool", event.tool, event, about=ANONYMOUS)
        if event.outcome == "declined" and not self._is_remembered_decline(event):
            self._hit(DECLINED_CONFIRMATIONS, key_kind, key, event)
        if details.get("open_world") is True:
            if event.outcome not in ("refused", "confirmation_required"):
                reads = self._counter(BULK_READ_THEN_OPEN_WORLD, key_kind)
                if reads is not None and key is not None and reads.count(_bounded(key)) >= reads.threshold:
                    self.report(Alert(BULK_READ_THEN_OPEN_WORLD, key_kind, key, reads.count(_bounded(key)),
                                      self.thresholds[BULK_READ_THEN_OPEN_WORLD], event.principal))
        elif details.get("effect") == "read" and event.outcome == "ok":
            reads = self._counter(BULK_READ_THEN_OPEN_WORLD, key_kind)
            if reads is not None and key is not None:
                reads.hit(_bounded(key))  # the alert waits for the open-world call

    def _hit(self, detector: str, key_kind: str, key: str | None, event: SecurityEvent, *,
             about: str | None = None) -> None:
        """Count one event for ``key``; ``about``: whom the alert's audit record names (default the caller)."""
        counter = self._counter(detector, key_kind)
        if counter is None or not key:
            return
        count = counter.hit(_bounded(key))
        if count >= counter.threshold:
            self.report(Alert(detector, key_kind, key, count, self.thresholds[detector],
                              event.principal if about is None else about))

    def _counter(self, detector: str, key_kind: str) -> SlidingWindowCounter | None:
        threshold = self.thresholds.get(detector)
        if threshold is None or threshold.count == 0:
            return None  # this detector is off
        counter = self._counters.get((detector, key_kind))
        if counter is None:
            counter = SlidingWindowCounter(threshold.count, threshold.window_seconds, self.max_keys, self.clock)
            self._counters[(detector, key_kind)] = counter
        return counter

    def _remember_decline(self, event: SecurityEvent) -> None:
        self._recent_declines[(event.principal, event.tool)] = self.clock()
        self._recent_declines.move_to_end((event.principal, event.tool))
        if len(self._recent_declines) > self.max_keys:
            self._recent_declines.popitem(last=False)

    def _is_remembered_decline(self, event: SecurityEvent) -> bool:
        seen = self._recent_declines.pop((event.principal, event.tool), None)
        return seen is not None and self.clock() - seen <= SAME_DECLINE_SECONDS

    def tracked_keys(self) -> int:
        """How many keys the detectors hold in memory (bounded by ``max_keys`` per counter)."""
        return sum(len(counter) for counter in self._counters.values()) + len(self._recent_declines)


def _caller(event: SecurityEvent) -> tuple[str, str | None]:
    """Who made a call: the principal, or for an anonymous one the address it came from."""
    if event.principal != ANONYMOUS:
        return "principal", event.principal
    return "address", event.address


def _bounded(key: str) -> str:
    """Keys are attacker-chosen: a long one is kept as its digest, so memory per key is bounded."""
    return key if len(key) <= MAX_KEY_CHARS else hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()
