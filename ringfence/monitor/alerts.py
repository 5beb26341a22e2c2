"""What happens when a detector's threshold is reached: once per key per cooldown, an alert.

An alert is a WARNING on the ``ringfence.alerts`` logger (fields also in ``extra["alert"]`` for
JSON log formatters), an ``alert.raised`` audit record, and, when configured, a webhook POST.
None of them carries raw personal data: the key is a keyed hash, the same in all three.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

from ringfence.audit.records import EventKind
from ringfence.events import Events, SecurityEvent
from ringfence.monitor.detectors import Alert
from ringfence.monitor.metrics import Metrics
from ringfence.monitor.webhook import WebhookSender
from ringfence.monitor.windows import Cooldown

logger = logging.getLogger("ringfence.alerts")

# Audit appends waiting at once; past this an alert is still logged and sent, not recorded.
MAX_PENDING_RECORDS = 64
PSEUDONYM_HEX_DIGITS = 16


def keyed_pseudonym(key: bytes) -> Callable[[str], str]:
    """HMAC-SHA256 under the deployment's key, shortened: the same value always maps to the same name."""

    def pseudonym(value: str) -> str:
        return hmac.new(key, value.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX_DIGITS]

    return pseudonym


class AlertDispatcher:
    """Receives every threshold reached; raises an alert unless the same one was raised within the cooldown."""

    def __init__(self, *, cooldown_seconds: float, max_keys: int, pseudonym: Callable[[str], str],
                 events: Events | None = None, webhook: WebhookSender | None = None,
                 metrics: Metrics | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown = Cooldown(cooldown_seconds, max_keys, clock)
        self.pseudonym = pseudonym
        self.events = events
        self.webhook = webhook
        self.metrics = metrics
        self._pending: set[asyncio.Task[None]] = set()

    def threshold_reached(self, alert: Alert) -> None:
        """Called by the detectors, on the request's path: only counts, logs and schedules."""
        if self.metrics is not None:
            self.metrics.detector_hits.labels(alert.detector).inc()
        if not self.cooldown.ready(f"{alert.detector}|{alert.key_kind}|{alert.key}"):
            return
        if self.metrics is not None:
            self.metrics.alerts.labels(alert.detector).inc()
        document = alert.document(self.pseudonym)
        logger.warning("alert detector=%s key=%s count=%d threshold=%d window_seconds=%d", document["detector"],
                       document["key"], document["count"], document["threshold"], document["window_seconds"],
                       extra={"alert": document})
        self._record(alert, document)
        if self.webhook is not None:
            self.webhook.submit({"event": str(EventKind.ALERT_RAISED), "time": int(time.time()), **document})

    def _record(self, alert: Alert, document: dict[str, Any]) -> None:
        if self.events is None:
            return
        if len(self._pending) >= MAX_PENDING_RECORDS:
            logger.warning("too many alert records waiting for the audit log; %s not recorded", alert.detector)
            return
        # record_quietly also notifies the observers; the detectors ignore alert.raised, so no loop.
        event = SecurityEvent(EventKind.ALERT_RAISED, outcome=alert.detector, principal=alert.principal,
                              details=document)
        task = asyncio.get_running_loop().create_task(self.events.record_quietly(event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def close(self) -> None:
        """Let the alert records already scheduled reach the audit log."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=5)
