"""Suspicious-activity detectors, fed synthetic events on a synthetic clock (no waiting, no timing).

Each detector alerts when one key reaches its threshold within its window; an alert fires once
per key per cooldown; memory stays bounded however many keys an attacker makes up.
"""

from __future__ import annotations

from ringfence.audit.records import EventKind
from ringfence.events import SecurityEvent
from ringfence.monitor.alerts import AlertDispatcher, keyed_pseudonym
from ringfence.monitor.detectors import (
    AUTH_FAILURE_BURST,
    BULK_READ_THEN_OPEN_WORLD,
    CALL_VOLUME,
    DECLINED_CONFIRMATIONS,
    INJECTION_HITS,
    SCOPE_PROBING,
    Alert,
    SuspiciousActivity,
    Threshold,
)
from ringfence.monitor.metrics import Metrics
from ringfence.monitor.windows import Cooldown, SlidingWindowCounter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def detectors(clock: Clock, max_keys: int = 1000, **thresholds: Threshold) -> tuple[SuspiciousActivity, list[Alert]]:
    alerts: list[Alert] = []
    return SuspiciousActivity(thresholds, alerts.append, max_keys=max_keys, clock=clock), alerts


def auth_failure(address: str, client_id: str | None = None) -> SecurityEvent:
    return SecurityEvent(EventKind.AUTH_FAILURE, "invalid_token", address=address, client_id=client_id,
                         details={"stage": "resource"})


def tool_call(principal: str, *, effect: str = "read", open_world: bool = False, outcome: str = "ok",
              tool: str = "search") -> SecurityEvent:
    return SecurityEvent(EventKind.TOOL_CALL, outcome, principal=principal, tool=tool,
                         details={"effect": effect, "open_world": open_world})


def test_auth_failures_from_one_address_alert_at_the_threshold_not_before():
    clock = Clock()
    watch, alerts = detectors(clock, **{AUTH_FAILURE_BURST: Threshold(5, 60)})
    for _ in range(4):
        watch.observe(auth_failure("203.0.113.7"))
    assert alerts == []
    watch.observe(auth_failure("203.0.113.7"))
    assert [(a.detector, a.key_kind, a.key, a.count) for a in alerts] == [
        (AUTH_FAILURE_BURST, "address", "203.0.113.7", 5)]


def test_auth_failures_spread_over_more_than_the_window_do_not_alert():
    clock = Clock()
    watch, alerts = detectors(clock, **{AUTH_FAILURE_BURST: Threshold(3, 60)})
    for _ in range(10):
        watch.observe(auth_failure("203.0.113.7"))
        clock.now += 30.5  # two per window at most
    assert alerts == []


def test_auth_failures_are_counted_per_client_across_addresses():
    clock = Clock()
    watch, alerts = detectors(clock, **{AUTH_FAILURE_BURST: Threshold(3, 60)})
    for n in range(3):
        watch.observe(auth_failure(f"198.51.100.{n}", client_id="stolen-client"))
    assert [(a.key_kind, a.key) for a in alerts] == [("client", "stolen-client")]


def test_scope_probing_by_one_principal_alerts():
    clock = Clock()
    watch, alerts = detectors(clock, **{SCOPE_PROBING: Threshold(3, 300)})
    for tool in ("export", "delete_all", "admin"):
        watch.observe(SecurityEvent(EventKind.SCOPE_REFUSED, "insufficient_scope", principal="mallory", tool=tool,
                                    details={"required": ["admin"]}))
    assert [(a.detector, a.key_kind, a.key, a.principal) for a in alerts] == [
        (SCOPE_PROBING, "principal", "mallory", "mallory")]


def test_a_declined_confirmation_told_twice_counts_once():
    """The wrapper records confirmation.declined and then tool.call "declined" for one decline."""
    clock = Clock()
    watch, alerts = detectors(clock, **{DECLINED_CONFIRMATIONS: Threshold(3, 600)})
    for _ in range(2):
        watch.observe(SecurityEvent(EventKind.CONFIRMATION_DECLINED, "declined", principal="bob",
                                    tool="delete_contact", details={"channel": "elicitation"}))
        watch.observe(tool_call("bob", effect="destructive", outcome="declined", tool="delete_contact"))
    assert alerts == []
    watch.observe(SecurityEvent(EventKind.CONFIRMATION_DECLINED, "expired", principal="bob", tool="delete_contact",
                                details={"channel": "handle"}))
    assert [(a.detector, a.count) for a in alerts] == [(DECLINED_CONFIRMATIONS, 3)]


def test_one_injection_hit_alerts_by_default_threshold_of_one():
    clock = Clock()
    watch, alerts = detectors(clock, **{INJECTION_HITS: Threshold(1, 3600)})
    watch.observe(SecurityEvent(EventKind.INJECTION_FLAGGED, "flagged", principal="eve", tool="search",
                                details={"where": "arguments"}))
    assert [(a.detector, a.key) for a in alerts] == [(INJECTION_HITS, "eve")]


def test_bulk_reads_followed_by_an_open_world_call_alert_on_the_open_world_call():
    clock = Clock()
    watch, alerts = detectors(clock, **{BULK_READ_THEN_OPEN_WORLD: Threshold(5, 600)})
    for _ in range(5):
        watch.observe(tool_call("carol"))
    assert alerts == []  # reading alone is normal
    watch.observe(tool_call("carol", effect="write", open_world=True, tool="send_email"))
    assert [(a.detector, a.key, a.count) for a in alerts] == [(BULK_READ_THEN_OPEN_WORLD, "carol", 5)]


def test_an_open_world_call_after_few_or_old_reads_does_not_alert():
    clock = Clock()
    watch, alerts = detectors(clock, **{BULK_READ_THEN_OPEN_WORLD: Threshold(5, 600)})
    for _ in range(4):
        watch.observe(tool_call("dave"))
    watch.observe(tool_call("dave", open_world=True, tool="web_search"))
    watch.observe(tool_call("erin", effect="read", outcome="error"))  # failed reads read nothing
    for _ in range(5):
        watch.observe(tool_call("frank"))
    clock.now += 601
    watch.observe(tool_call("frank", open_world=True, tool="web_search"))
    assert alerts == []


def test_call_volume_per_principal_alerts():
    clock = Clock()
    watch, alerts = detectors(clock, **{CALL_VOLUME: Threshold(10, 60)})
    for _ in range(9):
        watch.observe(tool_call("gina"))
        watch.observe(tool_call("hank"))
    assert alerts == []
    watch.observe(tool_call("gina", effect="write"))
    assert [(a.detector, a.key) for a in alerts] == [(CALL_VOLUME, "gina")]


def test_a_threshold_of_zero_turns_the_detector_off():
    clock = Clock()
    watch, alerts = detectors(clock, **{AUTH_FAILURE_BURST: Threshold(0, 60)})
    for _ in range(100):
        watch.observe(auth_failure("203.0.113.7"))
    assert alerts == [] and watch.tracked_keys() == 0


def test_detectors_ignore_their_own_alert_records():
    clock = Clock()
    watch, alerts = detectors(clock, **{AUTH_FAILURE_BURST: Threshold(1, 60), CALL_VOLUME: Threshold(1, 60)})
    watch.observe(SecurityEvent(EventKind.ALERT_RAISED, AUTH_FAILURE_BURST, address="203.0.113.7",
                                details={"detector": AUTH_FAILURE_BURST}))
    assert alerts == []


def test_rotating_addresses_cannot_grow_memory_past_the_key_cap():
    clock = Clock()
    watch, _ = detectors(clock, max_keys=100, **{AUTH_FAILURE_BURST: Threshold(5, 60)})
    for n in range(20_000):
        watch.observe(auth_failure(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", client_id=f"client-{n}"))
    assert watch.tracked_keys() <= 2 * 100  # one counter per address, one per client


def test_an_attacker_chosen_long_key_is_stored_as_a_digest():
    watch, alerts = detectors(Clock(), **{AUTH_FAILURE_BURST: Threshold(2, 60)})
    long_client = "x" * 100_000
    watch.observe(auth_failure("203.0.113.7", client_id=long_client))
    watch.observe(auth_failure("203.0.113.8", client_id=long_client))
    assert [a.key_kind for a in alerts] == ["client"] and alerts[0].key == long_client
    counters = watch._counters.values()
    assert all(len(key) <= 128 for counter in counters for key in counter._hits)


def test_sliding_window_keeps_at_most_threshold_timestamps_per_key():
    clock = Clock()
    counter = SlidingWindowCounter(3, 60, 10, clock)
    assert [counter.hit("k") for _ in range(5)] == [1, 2, 3, 3, 3]
    clock.now += 60
    assert counter.count("k") == 0


def test_cooldown_lets_one_alert_per_key_through_per_period():
    clock = Clock()
    cooldown = Cooldown(600, 10, clock)
    assert cooldown.ready("a") is True
    assert cooldown.ready("a") is False
    assert cooldown.ready("b") is True
    clock.now += 599
    assert cooldown.ready("a") is False
    clock.now += 1
    assert cooldown.ready("a") is True


def test_an_alert_fires_once_per_key_per_cooldown_while_hits_keep_counting():
    clock = Clock()
    metrics = Metrics(["search"])
    dispatcher = AlertDispatcher(cooldown_seconds=900, max_keys=100, pseudonym=keyed_pseudonym(b"k" * 32),
                                 metrics=metrics, clock=clock)
    watch = SuspiciousActivity({AUTH_FAILURE_BURST: Threshold(3, 60)}, dispatcher.threshold_reached, clock=clock)
    for _ in range(10):
        watch.observe(auth_failure("203.0.113.7"))
    watch.observe(auth_failure("203.0.113.7"))
    assert metrics.alerts.labels(AUTH_FAILURE_BURST)._value.get() == 1
    assert metrics.detector_hits.labels(AUTH_FAILURE_BURST)._value.get() == 9
    clock.now += 900
    for _ in range(3):
        watch.observe(auth_failure("203.0.113.7"))
    assert metrics.alerts.labels(AUTH_FAILURE_BURST)._value.get() == 2


def test_alert_document_names_the_key_only_by_a_keyed_hash():
    alert = Alert(AUTH_FAILURE_BURST, "address", "203.0.113.7", 20, Threshold(20, 60))
    one, other = keyed_pseudonym(b"a" * 32), keyed_pseudonym(b"b" * 32)
    document = alert.document(one)
    assert "203.0.113.7" not in str(document)
    assert document["key"] == "address:" + one("203.0.113.7") != "address:" + other("203.0.113.7")
    assert document == {"detector": AUTH_FAILURE_BURST, "key": document["key"], "count": 20, "threshold": 20,
                        "window_seconds": 60}
