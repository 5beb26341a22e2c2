"""The operations side of one server, assembled from the settings: metrics, detectors, alerts.

``build_asgi`` makes one :class:`Monitoring`, which registers its observers on the server's
:class:`~ringfence.events.Events`, wraps the ASGI app (request metrics outermost, then
``/metrics``), and is closed in the lifespan.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit

from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from ringfence.config import Settings
from ringfence.events import Events
from ringfence.monitor.alerts import AlertDispatcher, keyed_pseudonym
from ringfence.monitor.detectors import SuspiciousActivity, thresholds_from
from ringfence.monitor.metrics import Metrics, RequestMetrics
from ringfence.monitor.scrape import METRICS_PATH, MetricsEndpoint, loopback_deployment
from ringfence.monitor.webhook import WebhookSender


class Monitoring:
    """Metrics and suspicious-activity alerts for one server, observing ``events``."""

    def __init__(self, settings: Settings, tools: Iterable[str], events: Events, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.metrics = Metrics(tools)
        self.webhook: WebhookSender | None = None
        if settings.alert_webhook_url:
            self.webhook = WebhookSender(
                settings.alert_webhook_url, settings.alert_webhook_secret,
                timeout=settings.alert_webhook_timeout_seconds, retries=settings.alert_webhook_retries,
                count=lambda outcome: self.metrics.webhook_deliveries.labels(outcome).inc(),
                attempt=lambda result: self.metrics.webhook_attempts.labels(result).inc(),
            )
        self.alerts = AlertDispatcher(cooldown_seconds=settings.alert_cooldown_seconds,
                                      max_keys=settings.alert_max_tracked_keys,
                                      pseudonym=keyed_pseudonym(events.hash_key), events=events,
                                      webhook=self.webhook, metrics=self.metrics, clock=clock)
        self.detectors = SuspiciousActivity(thresholds_from(settings), self.alerts.threshold_reached,
                                            max_keys=settings.alert_max_tracked_keys, clock=clock)
        events.add_observer(self.metrics)
        events.add_observer(self.detectors)

    def wrap(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> ASGIApp:
        """``app`` with every request measured and, unless turned off, ``/metrics`` answered."""
        if self.settings.metrics:
            app = MetricsEndpoint(app, self.metrics, self.settings)
        return RequestMetrics(app, self.metrics, routes, fixed_paths=(METRICS_PATH,))

    async def close(self) -> None:
        await self.alerts.close()
        if self.webhook is not None:
            await self.webhook.close()


def describe_monitoring(settings: Settings) -> list[str]:
    """Start-up lines for the operator: where metrics are served, where alerts go."""
    lines = []
    if settings.metrics:
        if settings.metrics_token:
            lines.append(f"metrics at {METRICS_PATH} for scrapers presenting RINGFENCE_METRICS_TOKEN")
        elif loopback_deployment(settings):
            lines.append(f"metrics at {METRICS_PATH} for loopback peers only")
        else:
            lines.append(f"metrics at {METRICS_PATH} are off until RINGFENCE_METRICS_TOKEN is set "
                         "(the public URL is not loopback)")
    if settings.alert_webhook_url:
        parts = urlsplit(settings.alert_webhook_url)  # the path may hold a secret: not printed
        signed = "signed" if settings.alert_webhook_secret else "UNSIGNED (set RINGFENCE_ALERT_WEBHOOK_SECRET)"
        lines.append(f"alerts posted to {parts.scheme}://{parts.netloc}/… ({signed}) and logged")
    else:
        lines.append("alerts logged (ringfence.alerts) and audited; no webhook")
    return lines
