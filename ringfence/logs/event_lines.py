"""Security events as log lines: one structured line per :class:`ringfence.events.SecurityEvent`."""

from __future__ import annotations

import logging

from ringfence.events import ANONYMOUS, SecurityEvent
from ringfence.logs.context import keyed_hash

logger = logging.getLogger("ringfence.security")

# Worth an operator's attention; everything else is INFO, but for DEBUG_KINDS.
WARNING_KINDS = frozenset({"auth.failure", "scope.refused", "injection.flagged", "ratelimit.exceeded", "alert.raised"})
WARNING_OUTCOMES = frozenset({"failed", "refused", "invalid"})
# A write's ``tool.started`` is for the audit trail (a call that dies mid-way is still on record);
# its ``tool.call`` line, a moment later, tells the operator the same and how it ended.
DEBUG_KINDS = frozenset({"tool.started"})


class EventLogObserver:
    """An :class:`ringfence.events.EventObserver` that writes each event to the log.

    The principal appears only as a keyed hash (the same user gives the same hash on every line
    and instance); details are redacted by the formatter like every other value.
    """

    def observe(self, event: SecurityEvent) -> None:
        kind = str(event.kind)
        level = logging.WARNING if kind in WARNING_KINDS or event.outcome in WARNING_OUTCOMES else logging.INFO
        if kind in DEBUG_KINDS and level == logging.INFO:
            level = logging.DEBUG
        if not logger.isEnabledFor(level):
            return  # nothing to format
        fields = {
            "event": kind,
            "outcome": event.outcome,
            "principal": event.principal if event.principal == ANONYMOUS else keyed_hash(event.principal, "principal"),
        }
        latency = None if event.latency_ms is None else round(event.latency_ms, 1)
        optional = {"tool": event.tool, "client_id": event.client_id, "address": event.address,
                    "latency_ms": latency, "details": dict(event.details) or None}
        fields.update({name: value for name, value in optional.items() if value is not None})
        suffix = f" {event.tool}" if event.tool else ""
        logger.log(level, "%s %s%s", kind, event.outcome, suffix, extra=fields)
