"""Alert and metrics settings are validated at start-up and announced, one line each."""

from __future__ import annotations

import pytest

from ringfence.config import ConfigError, Settings
from ringfence.monitor.detectors import AUTH_FAILURE_BURST, CALL_VOLUME, Threshold
from ringfence.monitor.service import describe_monitoring
from ringfence.server import monitoring_options, thresholds_from


@pytest.mark.parametrize("overrides, message", [
    ({"alert_auth_failures": -1}, "alert_auth_failures"),
    ({"alert_scope_refusals_window_seconds": 0}, "alert_scope_refusals_window_seconds"),
    ({"alert_cooldown_seconds": 0}, "alert_cooldown_seconds"),
    ({"alert_max_tracked_keys": 10}, "alert_max_tracked_keys"),
    ({"metrics_token": "short"}, "metrics_token"),
    ({"alert_webhook_url": "https://hooks.example.com/a", "alert_webhook_secret": "short"}, "alert_webhook_secret"),
    ({"alert_webhook_secret": "a-long-enough-secret-value"}, "no --alert-webhook-url"),
    ({"alert_webhook_url": "http://hooks.example.com/a"}, "plain http"),
    ({"alert_webhook_url": "https://user:pw@hooks.example.com/a"}, "credentials"),
    ({"alert_webhook_url": "ftp://127.0.0.1/a"}, "absolute https URL"),
    ({"alert_webhook_url": "https://hooks.example.com:99999/a"}, "not a valid URL"),
])
def test_bad_alert_and_metrics_settings_stop_start_up_with_a_sentence(overrides, message, tmp_path):
    with pytest.raises(ConfigError, match=message) as refused:
        Settings.load(data_dir=tmp_path, **overrides)
    assert "hooks.example.com" not in str(refused.value)  # a webhook URL may carry its secret: never echoed


def test_thresholds_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RINGFENCE_ALERT_AUTH_FAILURES", "7")
    monkeypatch.setenv("RINGFENCE_ALERT_AUTH_FAILURES_WINDOW_SECONDS", "30")
    monkeypatch.setenv("RINGFENCE_ALERT_TOOL_CALLS", "0")
    thresholds = thresholds_from(Settings.load(data_dir=tmp_path))
    assert thresholds[AUTH_FAILURE_BURST] == Threshold(7, 30)
    assert thresholds[CALL_VOLUME].count == 0  # off


def test_start_up_says_where_metrics_and_alerts_go_without_the_webhook_path(tmp_path):
    lines = describe_monitoring(monitoring_options(Settings.load(
        data_dir=tmp_path, alert_webhook_url="https://hooks.example.com/services/T000/SECRETPATH",
        alert_webhook_secret="a-long-enough-secret-value", metrics_token="scrape-token-0123456789")))
    assert lines == ["metrics at /metrics for scrapers presenting RINGFENCE_METRICS_TOKEN",
                     "alerts posted to https://hooks.example.com/… (signed) and logged"]
    assert describe_monitoring(monitoring_options(Settings.load(data_dir=tmp_path, metrics=False))) == [
        "alerts logged (ringfence.alerts) and audited; no webhook"]
