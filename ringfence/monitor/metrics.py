"""Prometheus metrics, counted from security events and from every HTTP request.

Each server has its own ``CollectorRegistry`` (never the process-global one). Every label has a
bounded set of values: tool names are the declared ones (anything else is ``(unknown)``), other
values are the first few seen (then ``(other)``), and no principal, address or client id is
ever a label.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ringfence.audit.records import EventKind
from ringfence.events import SecurityEvent

UNKNOWN_TOOL = "(unknown)"
OTHER = "(other)"
NO_VALUE = ""
MAX_LABEL_VALUES = 32
MAX_LABEL_LENGTH = 64
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Tool calls take milliseconds to tens of seconds (a tool waiting on the user's confirmation).
TOOL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class BoundedLabel:
    """Label values for one label: the first ``limit`` distinct values seen, then ``(other)``."""

    def __init__(self, limit: int = MAX_LABEL_VALUES, known: Iterable[str] = ()) -> None:
        self.limit = limit
        self.values: set[str] = set(known)

    def __call__(self, value: object) -> str:
        if value is None:
            return NO_VALUE
        text = str(value)[:MAX_LABEL_LENGTH]
        if text in self.values:
            return text
        if len(self.values) < self.limit:
            self.values.add(text)
            return text
        return OTHER


class Metrics:
    """The server's metrics; an event observer (``observe``) and the ``/metrics`` document (``render``)."""

    def __init__(self, tools: Iterable[str]) -> None:
        self.tools = frozenset(tools)
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter("ringfence_http_requests", "HTTP requests answered, by route template, "
                                     "method and status class", ["route", "method", "status"], registry=r)
        self.http_duration = Histogram("ringfence_http_request_duration_seconds", "Time to answer an HTTP request",
                                       ["route", "method"], registry=r)
        self.events = Counter("ringfence_security_events", "Security events, by kind", ["kind"], registry=r)
        self.tool_calls = Counter("ringfence_tool_calls", "Tool calls, by tool and outcome", ["tool", "outcome"],
                                  registry=r)
        self.tool_duration = Histogram("ringfence_tool_call_duration_seconds", "Tool call latency",
                                       ["tool", "outcome"], buckets=TOOL_BUCKETS, registry=r)
        self.auth_failures = Counter("ringfence_auth_failures", "Failed authentications, by stage and outcome",
                                     ["stage", "outcome"], registry=r)
        self.scope_refusals = Counter("ringfence_scope_refusals", "Calls refused for a missing token or scope",
                                      ["tool", "outcome"], registry=r)
        self.confirmations = Counter("ringfence_confirmations", "Confirmations of destructive calls, by outcome "
                                     "and channel", ["outcome", "channel"], registry=r)
        self.rate_limited = Counter("ringfence_rate_limited", "Calls refused by a rate limit", ["tool"], registry=r)
        self.injections = Counter("ringfence_injection_flagged", "Prompt-injection hits, by where they were found",
                                  ["tool", "where"], registry=r)
        self.detector_hits = Counter("ringfence_detector_hits", "Times a detector's threshold was reached "
                                     "(including during its cooldown)", ["detector"], registry=r)
        self.alerts = Counter("ringfence_alerts", "Alerts raised, by detector", ["detector"], registry=r)
        self.webhook_deliveries = Counter("ringfence_alert_webhook_deliveries", "Alert webhook deliveries, by "
                                          "outcome (delivered, failed after retries, dropped: queue full)",
                                          ["outcome"], registry=r)
        self.webhook_attempts = Counter("ringfence_alert_webhook_attempts", "Alert webhook POST attempts, by result",
                                        ["result"], registry=r)
        self._kind = BoundedLabel(known=(str(kind) for kind in EventKind))
        self._outcome = BoundedLabel()
        self._stage = BoundedLabel()
        self._channel = BoundedLabel()
        self._where = BoundedLabel()

    def tool_label(self, tool: str | None) -> str:
        if tool is None:
            return NO_VALUE
        return tool if tool in self.tools else UNKNOWN_TOOL

    def observe(self, event: SecurityEvent) -> None:
        """Count one event (an :class:`~ringfence.events.EventObserver`)."""
        kind = str(event.kind)
        self.events.labels(self._kind(kind)).inc()
        tool, outcome = self.tool_label(event.tool), self._outcome(event.outcome)
        details = event.details
        if kind == EventKind.TOOL_CALL:
            self.tool_calls.labels(tool, outcome).inc()
            if event.latency_ms is not None and event.latency_ms >= 0:
                self.tool_duration.labels(tool, outcome).observe(event.latency_ms / 1000)
        elif kind == EventKind.AUTH_FAILURE:
            self.auth_failures.labels(self._stage(details.get("stage")), outcome).inc()
        elif kind == EventKind.SCOPE_REFUSED:
            self.scope_refusals.labels(tool, outcome).inc()
        elif kind in (EventKind.CONFIRMATION_ACCEPTED, EventKind.CONFIRMATION_DECLINED):
            self.confirmations.labels(outcome, self._channel(details.get("channel"))).inc()
        elif kind == EventKind.RATE_LIMITED:
            self.rate_limited.labels(tool).inc()
        elif kind == EventKind.INJECTION_FLAGGED:
            self.injections.labels(tool, self._where(details.get("where"))).inc()

    def render(self, accept: str) -> tuple[bytes, str]:
        """The exposition document in the format the scraper asked for, and its content type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


MAX_KNOWN_SERIES = 1024  # a method outside HTTP_METHODS is counted as OTHER, but keyed as sent


class RequestMetrics:
    """Pure ASGI, outermost: counts and times every HTTP request by route template and status class.

    Every answer passes here, so this is where a 5xx is told (``server_error(route, status)``, for
    the detectors); a request answered below 500 costs no more than its count.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Sequence[BaseRoute],
                 fixed_paths: Iterable[str] = (),
                 server_error: Callable[[str, int], None] | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self.server_error = server_error
        # A path without parameters is its own template: found by lookup, not by trying each route.
        self.fixed_paths = frozenset(fixed_paths) | {
            route.path for route in routes if isinstance(route, Route) and not route.param_convertors}
        self._known: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an application that fails before answering is answered 500 by the server

        async def measured(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, measured)
        finally:
            route = self.route_template(scope)
            count, duration = self._series(route, scope["method"], status // 100)
            count.inc()
            duration.observe(time.perf_counter() - started)
            if status >= 500 and self.server_error is not None:
                self.server_error(route, status)

    def _series(self, route: str, method: str, status_class: int) -> tuple[Any, Any]:
        """The request counter and duration histogram of one (route, method, status class), looked up
        once: there are only so many routes, methods and classes."""
        key = (route, method, status_class)
        series = self._known.get(key)
        if series is None:
            method = method if method in HTTP_METHODS else OTHER
            series = (self.metrics.http_requests.labels(route, method, f"{status_class}xx"),
                      self.metrics.http_duration.labels(route, method))
            if len(self._known) < MAX_KNOWN_SERIES:
                self._known[key] = series
        return series

    def route_template(self, scope: Scope) -> str:
        """The matching route's path template (``/confirm/{handle}``), never the raw path."""
        if scope["path"] in self.fixed_paths:
            return scope["path"]
        for route in self.routes:
            match, _ = route.matches({**scope, "type": "http"})
            if match is not Match.NONE:
                return getattr(route, "path", OTHER)
        return OTHER
