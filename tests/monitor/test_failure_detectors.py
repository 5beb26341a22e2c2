"""The repeated-error detectors, fed synthetic events on a synthetic clock: tool failures per tool,
5xx answers per server, 429s per caller, per client and in all. Also where a 5xx is told: the
request metrics, around an ASGI app that fails before it answers."""

from __future__ import annotations

import asyncio

from starlette.types import Receive, Scope, Send

from ringfence.audit.records import EventKind
from ringfence.config import Settings
from ringfence.events import SecurityEvent
from ringfence.monitor.detectors import (
    RATE_LIMIT_STORM,
    RATE_LIMIT_STORM_TOTAL,
    SERVER_ERROR,
    SERVER_ERRORS,
    TOOL_FAILURES,
    Threshold,
)
from ringfence.monitor.metrics import Metrics, RequestMetrics
from ringfence.monitor.service import thresholds_from
from tests.monitor.test_detectors import Clock, detectors


def failed_call(principal: str, tool: str = "export", outcome: str = "failed") -> SecurityEvent:
    return SecurityEvent(EventKind.TOOL_CALL, outcome, principal=principal, tool=tool,
                         details={"effect": "read", "open_world": False})


def rate_limited(principal: str = "(anonymous)", address: str = "203.0.113.7",
                 client_id: str | None = None) -> SecurityEvent:
    return SecurityEvent(EventKind.RATE_LIMITED, "rate_limited", principal=principal, address=address,
                         client_id=client_id, details={"stage": "resource"})


def test_failures_of_one_tool_by_different_callers_add_up_to_one_alert_about_the_tool():
    clock = Clock()
    watch, alerts = detectors(clock, **{TOOL_FAILURES: Threshold(3, 60)})
    watch.observe(failed_call("ana", outcome="error"))  # a ToolError counts as a failure too
    watch.observe(failed_call("ben"))
    watch.observe(failed_call("cy", tool="other"))
    watch.observe(failed_call("cy", outcome="ok"))
    assert alerts == []
    watch.observe(failed_call("dee"))
    [alert] = alerts
    assert (alert.detector, alert.key_kind, alert.key, alert.count, alert.principal) == (
        TOOL_FAILURES, "tool", "export", 3, "(anonymous)")
    assert alert.document(lambda value: "hashed")["key"] == "tool:export"  # a tool name is shown as it is


def test_tool_failures_outside_the_window_do_not_add_up():
    clock = Clock()
    watch, alerts = detectors(clock, **{TOOL_FAILURES: Threshold(2, 60)})
    watch.observe(failed_call("ana"))
    clock.now += 61
    watch.observe(failed_call("ana"))
    assert alerts == []


def test_5xx_answers_add_up_for_the_whole_server():
    clock = Clock()
    watch, alerts = detectors(clock, **{SERVER_ERRORS: Threshold(2, 60)})
    watch.observe(SecurityEvent(SERVER_ERROR, "503", details={"route": "/mcp"}))
    assert alerts == []
    watch.observe(SecurityEvent(SERVER_ERROR, "500", details={"route": "/token"}))
    assert [(a.detector, a.key_kind, a.key) for a in alerts] == [(SERVER_ERRORS, "server", "all")]


def test_429s_alert_per_caller_per_client_and_in_all_each_at_its_own_threshold():
    clock = Clock()
    watch, alerts = detectors(clock, **{RATE_LIMIT_STORM: Threshold(2, 60), RATE_LIMIT_STORM_TOTAL: Threshold(3, 60)})
    watch.observe(rate_limited(address="203.0.113.7"))
    watch.observe(rate_limited(address="198.51.100.1"))
    assert alerts == []
    watch.observe(rate_limited(address="203.0.113.7"))  # that address's second; the server's third
    assert sorted((a.detector, a.key_kind, a.key) for a in alerts) == [
        (RATE_LIMIT_STORM, "address", "203.0.113.7"), (RATE_LIMIT_STORM_TOTAL, "server", "all")]
    alerts.clear()
    watch.observe(rate_limited("gina", client_id="chatgpt"))
    watch.observe(rate_limited("hal", client_id="chatgpt"))
    assert (RATE_LIMIT_STORM, "client", "chatgpt") in [(a.detector, a.key_kind, a.key) for a in alerts]
    assert all(a.key_kind != "principal" for a in alerts)  # gina and hal were refused once each
    assert alerts[0].document(lambda value: "hashed")["key"] != "client:chatgpt"  # callers only hashed


def test_a_detector_set_to_zero_counts_nothing():
    watch, alerts = detectors(Clock(), **{TOOL_FAILURES: Threshold(0, 60), RATE_LIMIT_STORM_TOTAL: Threshold(0, 60)})
    for _ in range(50):
        watch.observe(failed_call("ana"))
        watch.observe(rate_limited())
    assert alerts == [] and watch.tracked_keys() == 0


def test_the_new_thresholds_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RINGFENCE_ALERT_TOOL_FAILURES", "4")
    monkeypatch.setenv("RINGFENCE_ALERT_SERVER_ERRORS_WINDOW_SECONDS", "30")
    monkeypatch.setenv("RINGFENCE_ALERT_RATE_LIMITED_TOTAL", "0")
    thresholds = thresholds_from(Settings.load(data_dir=tmp_path))
    assert thresholds[TOOL_FAILURES] == Threshold(4, 300)
    assert thresholds[SERVER_ERRORS] == Threshold(20, 30)
    assert thresholds[RATE_LIMIT_STORM] == Threshold(30, 60)
    assert thresholds[RATE_LIMIT_STORM_TOTAL].count == 0  # off


def serve_once(app, path: str = "/mcp") -> list[tuple[str, int]]:
    """One GET through RequestMetrics around ``app``; the 5xx it told, as (route, status)."""
    told: list[tuple[str, int]] = []
    measured = RequestMetrics(app, Metrics(()), [], fixed_paths=("/mcp",),
                              server_error=lambda route, status: told.append((route, status)))
    scope = {"type": "http", "method": "GET", "path": path, "headers": []}

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        pass

    async def run():
        try:
            await measured(scope, receive, send)
        except RuntimeError:
            pass  # the server answers 500 for an app that raised before answering

    asyncio.run(run())
    return told


async def answers(status: int, scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_an_app_that_fails_before_answering_is_told_as_a_500():
    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("the database went away")

    assert serve_once(failing) == [("/mcp", 500)]


def test_a_5xx_answer_is_told_and_a_4xx_is_not():
    assert serve_once(lambda s, r, se: answers(503, s, r, se)) == [("/mcp", 503)]
    assert serve_once(lambda s, r, se: answers(429, s, r, se)) == []
    assert serve_once(lambda s, r, se: answers(200, s, r, se), path="/elsewhere") == []
