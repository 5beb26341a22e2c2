"""Repeated errors raise alerts like failed sign-ins do: a tool that keeps failing, a burst of 5xx
answers, a storm of 429s. Each against a real `ringfence serve`, alerting a real webhook receiver.

"Not before" is read from ``/metrics``: the detectors count an event before its answer is sent,
so a scrape after the answers shows every threshold reached so far; the webhook is asynchronous.
"""

from __future__ import annotations

import json
from pathlib import Path

from ringfence.monitor.detectors import (
    RATE_LIMIT_STORM,
    RATE_LIMIT_STORM_TOTAL,
    SERVER_ERRORS,
    TOOL_FAILURES,
)
from tests.conftest import external_idp_args
from tests.monitor.receiver import WebhookReceiver
from tests.monitor.support import WEBHOOK_SECRET, audit_alerts, sample, scrape, wait_for_log
from tests.support.http import tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.serve import REPO, ServeProcess

FAILING_APP = str(REPO / "tests" / "monitor" / "failing_app.py")
# Every repeated-error detector off unless a test turns it on: each test sees only its own.
QUIET = {"alert_tool_failures": "0", "alert_server_errors": "0", "alert_rate_limited": "0",
         "alert_rate_limited_total": "0"}


def serve_failing(tmp: Path, idp: TestIdentityProvider, webhook: str, **settings: str) -> ServeProcess:
    """tests/monitor/failing_app.py trusting ``idp``, alerts posted to ``webhook``."""
    idp_args, env = external_idp_args(idp, introspection=False)
    values = {**QUIET, "alert_webhook_url": webhook, "alert_webhook_secret": WEBHOOK_SECRET, **settings}
    env.update({f"RINGFENCE_{name.upper()}": value for name, value in values.items()})
    return ServeProcess(FAILING_APP, *idp_args, "--data-dir", str(tmp / "data"), env=env).start(tmp)


def token(idp: TestIdentityProvider, server: ServeProcess) -> str:
    """A new caller each time: these alerts are about the tool or the server, whoever calls."""
    return idp.token(server.mcp_url, sub=new_subject(), scope="probe:use")


def alerts_of(detector: str, server: ServeProcess) -> tuple[float, float]:
    """(thresholds reached, alerts raised) for ``detector``, from /metrics."""
    samples = scrape(server)
    return (sample(samples, "ringfence_detector_hits_total", detector=detector),
            sample(samples, "ringfence_alerts_total", detector=detector))


def test_a_tool_failing_for_every_caller_raises_a_tool_failures_alert_at_the_threshold_not_before(idp, tmp_path):
    with WebhookReceiver("accept") as receiver:
        server = serve_failing(tmp_path, idp, receiver.url, alert_tool_failures="3")
        try:
            for _ in range(2):
                assert tool_result(server.call_tool("always_fails", token=token(idp, server)))["isError"] is True
            assert alerts_of(TOOL_FAILURES, server) == (0, 0)  # two failures, threshold three: nothing yet

            assert tool_result(server.call_tool("always_fails", token=token(idp, server)))["isError"] is True
            [delivery] = receiver.wait_for(1)
            alert = json.loads(delivery.body)
            assert alert["event"] == "alert.raised" and alert["detector"] == TOOL_FAILURES
            # A tool's name is no one's personal data: the key names it, so the operator knows where to look.
            assert (alert["key"], alert["count"], alert["threshold"], alert["window_seconds"]) == (
                "tool:always_fails", 3, 3, 300)
            wait_for_log(server, f"alert detector={TOOL_FAILURES} key=tool:always_fails")
            [record] = audit_alerts(tmp_path / "data", TOOL_FAILURES)
            assert record["payload"]["key"] == "tool:always_fails" and record["principal"] == "(anonymous)"

            for _ in range(3):  # more failures within the cooldown: counted, not alerted again
                server.call_tool("always_fails", token=token(idp, server))
            assert alerts_of(TOOL_FAILURES, server) == (4, 1)
            assert len(receiver.received) == 1
        finally:
            server.stop()


def test_a_burst_of_5xx_answers_raises_a_server_errors_alert_at_the_threshold_not_before(tmp_path):
    # A real 5xx: the identity provider is down (nothing listens on its port), so no token can be
    # checked and every call is refused 503 (fail closed). Started by no fixture, stopped by no test.
    down = TestIdentityProvider()
    with WebhookReceiver("accept") as receiver:
        server = serve_failing(tmp_path, down, receiver.url, alert_server_errors="3")
        try:
            for _ in range(2):
                assert server.call_tool("scarce", token=token(down, server)).status_code == 503
            assert alerts_of(SERVER_ERRORS, server) == (0, 0)

            assert server.call_tool("scarce", token=token(down, server)).status_code == 503
            [delivery] = receiver.wait_for(1)
            alert = json.loads(delivery.body)
            assert (alert["detector"], alert["key"], alert["count"], alert["window_seconds"]) == (
                SERVER_ERRORS, "server:all", 3, 60)
            [record] = audit_alerts(tmp_path / "data", SERVER_ERRORS)
            assert record["payload"]["key"] == "server:all"
            samples = scrape(server)
            assert sample(samples, "ringfence_security_events_total", kind="http.server_error") == 3
        finally:
            server.stop()


def test_a_storm_of_429s_to_one_caller_raises_a_rate_limit_storm_alert_about_that_caller(idp, tmp_path):
    with WebhookReceiver("accept") as receiver:
        server = serve_failing(tmp_path, idp, receiver.url, alert_rate_limited="3")
        try:
            caller = token(idp, server)
            assert server.call_tool("scarce", token=caller).status_code == 200  # the hour's one call
            for _ in range(2):
                assert server.call_tool("scarce", token=caller).status_code == 429
            assert alerts_of(RATE_LIMIT_STORM, server) == (0, 0)

            assert server.call_tool("scarce", token=caller).status_code == 429
            deliveries = receiver.wait_for(2)  # the caller (principal) and its OAuth client, each once
            alerts = sorted(json.loads(delivery.body)["key"].split(":")[0] for delivery in deliveries)
            assert alerts == ["client", "principal"]
            for delivery in deliveries:
                alert = json.loads(delivery.body)
                assert alert["detector"] == RATE_LIMIT_STORM and alert["count"] == 3
                assert "client-1" not in delivery.body.decode()  # callers only as keyed hashes
            assert alerts_of(RATE_LIMIT_STORM_TOTAL, server) == (0, 0)  # off in this test
        finally:
            server.stop()


def test_429s_spread_over_many_callers_raise_one_rate_limit_storm_total_alert(idp, tmp_path):
    with WebhookReceiver("accept") as receiver:
        server = serve_failing(tmp_path, idp, receiver.url, alert_rate_limited="3", alert_rate_limited_total="3")
        try:
            assert server.call_tool("scarce", token=token(idp, server)).status_code == 200
            # Each caller is refused once: no caller storms (the client-1 key does: every token names it).
            for _ in range(2):
                assert server.call_tool("scarce", token=token(idp, server)).status_code == 429
            assert alerts_of(RATE_LIMIT_STORM_TOTAL, server) == (0, 0)

            assert server.call_tool("scarce", token=token(idp, server)).status_code == 429
            deliveries = receiver.wait_for(2)
            keys = sorted((json.loads(d.body)["detector"], json.loads(d.body)["key"].split(":")[0]) for d in deliveries)
            assert keys == [(RATE_LIMIT_STORM, "client"), (RATE_LIMIT_STORM_TOTAL, "server")]
            samples = scrape(server)
            assert sample(samples, "ringfence_alerts_total", detector=RATE_LIMIT_STORM_TOTAL) == 1
        finally:
            server.stop()


def test_repeated_errors_below_their_thresholds_raise_no_alert(idp, tmp_path):
    with WebhookReceiver("accept") as receiver:
        server = serve_failing(tmp_path, idp, receiver.url, alert_tool_failures="3", alert_rate_limited="3",
                               alert_rate_limited_total="3")
        try:
            caller = token(idp, server)
            for _ in range(2):
                server.call_tool("always_fails", token=caller)
            assert server.call_tool("scarce", token=caller).status_code == 200
            for _ in range(2):
                assert server.call_tool("scarce", token=caller).status_code == 429
            for detector in (TOOL_FAILURES, RATE_LIMIT_STORM, RATE_LIMIT_STORM_TOTAL, SERVER_ERRORS):
                assert alerts_of(detector, server) == (0, 0), detector
            assert audit_alerts(tmp_path / "data", TOOL_FAILURES, timeout=0) == []
            assert receiver.received == []
        finally:
            server.stop()
