"""The operations side of one server, assembled from its options: metrics, detectors, alerts.

``build_asgi`` makes one :class:`Monitoring`, which registers its observers on the server's
:class:`~ringfence.events.Events`, wraps the ASGI app (request metrics outermost, then
``/metrics``), and is closed in the lifespan.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from ringfence.config import Settings
from ringfence.events import Events, SecurityEvent
from ringfence.monitor.alerts import AlertDispatcher, keyed_pseudonym
from ringfence.monitor.detectors import (
    AUTH_FAILURE_BURST,
    BULK_READ_THEN_OPEN_WORLD,
    CALL_VOLUME,
    DECLINED_CONFIRMATIONS,
    INJECTION_HITS,
    RATE_LIMIT_STORM,
    RATE_LIMIT_STORM_TOTAL,
    SCOPE_PROBING,
    SERVER_ERROR,
    SERVER_ERRORS,
    TOOL_FAILURES,
    SuspiciousActivity,
    Threshold,
)
from ringfence.monitor.metrics import Metrics, RequestMetrics
from ringfence.monitor.scrape import METRICS_PATH, MetricsEndpoint, loopback_deployment
from ringfence.monitor.webhook import WebhookSender

# Each detector's settings: RINGFENCE_ALERT_<NAME> (the count) and RINGFENCE_ALERT_<NAME>_WINDOW_SECONDS.
THRESHOLD_SETTINGS = {
    AUTH_FAILURE_BURST: "alert_auth_failures",
    SCOPE_PROBING: "alert_scope_refusals",
    DECLINED_CONFIRMATIONS: "alert_declined_confirmations",
    INJECTION_HITS: "alert_injection_hits",
    BULK_READ_THEN_OPEN_WORLD: "alert_bulk_reads",
    CALL_VOLUME: "alert_tool_calls",
    TOOL_FAILURES: "alert_tool_failures",
    SERVER_ERRORS: "alert_server_errors",
    RATE_LIMIT_STORM: "alert_rate_limited",
    RATE_LIMIT_STORM_TOTAL: "alert_rate_limited_total",
}


def thresholds_from(settings: Settings) -> dict[str, Threshold]:
    """Each detector's threshold from the ``RINGFENCE_ALERT_*`` settings."""
    return {detector: Threshold(getattr(settings, name), getattr(settings, f"{name}_window_seconds"))
            for detector, name in THRESHOLD_SETTINGS.items()}


@dataclass(frozen=True)
class MonitoringOptions:
    """What ``serve`` was told about metrics and alerts (``RINGFENCE_METRICS*``, ``RINGFENCE_ALERT_*``)."""

    metrics: bool
    metrics_token: str | None
    base_url: str  # the public URL
    hosts: frozenset[str]  # the Host values the server answers to
    thresholds: dict[str, Threshold]  # each detector's
    alert_cooldown_seconds: int
    alert_max_tracked_keys: int
    alert_webhook_url: str | None
    alert_webhook_secret: str | None
    alert_webhook_timeout_seconds: float
    alert_webhook_retries: int


class Monitoring:
    """Metrics and suspicious-activity alerts for one server, observing ``events``."""

    def __init__(self, options: MonitoringOptions, tools: Iterable[str], events: Events, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.options = options
        self.metrics = Metrics(tools)
        self.webhook: WebhookSender | None = None
        if options.alert_webhook_url:
            self.webhook = WebhookSender(
                options.alert_webhook_url, options.alert_webhook_secret,
                timeout=options.alert_webhook_timeout_seconds, retries=options.alert_webhook_retries,
                count=lambda outcome: self.metrics.webhook_deliveries.labels(outcome).inc(),
                attempt=lambda result: self.metrics.webhook_attempts.labels(result).inc(),
            )
        self.alerts = AlertDispatcher(cooldown_seconds=options.alert_cooldown_seconds,
                                      max_keys=options.alert_max_tracked_keys,
                                      pseudonym=keyed_pseudonym(events.hash_key), events=events,
                                      webhook=self.webhook, metrics=self.metrics, clock=clock)
        self.detectors = SuspiciousActivity(options.thresholds, self.alerts.threshold_reached,
                                            max_keys=options.alert_max_tracked_keys, clock=clock)
        self.events = events
        events.add_observer(self.metrics)
        events.add_observer(self.detectors)

    def wrap(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> ASGIApp:
        """``app`` with every request measured and, unless turned off, ``/metrics`` answered."""
        if self.options.metrics:
            app = MetricsEndpoint(app, self.metrics, token=self.options.metrics_token, hosts=self.options.hosts,
                                  base_url=self.options.base_url)
        return RequestMetrics(app, self.metrics, routes, fixed_paths=(METRICS_PATH,), server_error=self.server_error)

    def server_error(self, route: str, status: int) -> None:
        """A 5xx answer, told to the observers (metrics, detectors, the event log); never audited."""
        self.events.notify(SecurityEvent(SERVER_ERROR, str(status), details={"route": route}))

    async def close(self) -> None:
        await self.alerts.close()
        if self.webhook is not None:
            await self.webhook.close()


def describe_monitoring(options: MonitoringOptions) -> list[str]:
    """Start-up lines for the operator: where metrics are served, where alerts go."""
    lines = []
    if options.metrics:
        if options.metrics_token:
            lines.append(f"metrics at {METRICS_PATH} for scrapers presenting RINGFENCE_METRICS_TOKEN")
        elif loopback_deployment(options.base_url):
            lines.append(f"metrics at {METRICS_PATH} for loopback peers only")
        else:
            lines.append(f"metrics at {METRICS_PATH} are off until RINGFENCE_METRICS_TOKEN is set "
                         "(the public URL is not loopback)")
    if options.alert_webhook_url:
        parts = urlsplit(options.alert_webhook_url)  # the path may hold a secret: not printed
        signed = "signed" if options.alert_webhook_secret else "UNSIGNED (set RINGFENCE_ALERT_WEBHOOK_SECRET)"
        lines.append(f"alerts posted to {parts.scheme}://{parts.netloc}/… ({signed}) and logged")
    else:
        lines.append("alerts logged (ringfence.alerts) and audited; no webhook")
    return lines
