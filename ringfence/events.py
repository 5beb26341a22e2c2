"""Security events: each said once where it happens, then recorded everywhere it matters.

The gate, the tool wrapper and the authorization server describe what happened as one
:class:`SecurityEvent` and hand it to :class:`Events`. ``Events.record`` passes it to every
observer (metrics, suspicious-activity detectors: cheap, synchronous, never raise into the
request) and then appends it to the tamper-evident audit log, returning only once the record is
committed, so a response sent after ``record`` returns always has its audit record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ringfence.audit.log import AuditLog
from ringfence.audit.records import EventKind
from ringfence.detect.redactor import RememberingRedactor
from ringfence.principal import Principal
from ringfence.refusals import (
    InsufficientScope,
    InvalidAuthorizationRequest,
    InvalidToken,
    MissingToken,
    RateLimited,
    Refusal,
    UnknownSession,
)

logger = logging.getLogger("ringfence.events")

ANONYMOUS = "(anonymous)"


def principal_label(principal: Principal | None) -> str:
    """How a caller is named in audit records and metrics: the token's subject, or ``(anonymous)``.

    One server trusts one issuer, so the subject alone names the user unambiguously.
    """
    return principal.subject if principal is not None else ANONYMOUS


def argument_summary(arguments: Mapping[str, Any], hash_key: bytes,
                     logged_fields: Sequence[str] = ()) -> dict[str, Any]:
    """What a record says about a call's arguments: never their values, unless the tool opted a field in.

    Field names, the size of each field's JSON, and a keyed hash of the canonical JSON of all of
    them (equal arguments give equal hashes, which lets records be joined, yet the values cannot be
    recovered by guessing without the key).
    """
    encoded = {name: json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
               for name, value in arguments.items()}
    # surrogatepass: a lone surrogate (a "\ud800" escape in the request JSON) must not fail the record
    canonical = json.dumps(encoded, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")
    summary: dict[str, Any] = {
        "argument_fields": sorted(encoded),
        "argument_bytes": {name: len(text.encode("utf-8", "surrogatepass")) for name, text in encoded.items()},
        "arguments_hash": hmac.new(hash_key, canonical, hashlib.sha256).hexdigest()[:32],
    }
    opted = {name: arguments[name] for name in logged_fields if name in arguments}
    if opted:
        summary["arguments"] = opted  # redacted like every other detail before it is stored or logged
    return summary


# Refusals worth an audit record (kind, outcome); a missing token (the first step of linking) and
# a rate-limit hit are only observed (metrics, detectors).
AUDITED_REFUSALS: dict[type[Refusal], tuple[EventKind, str]] = {
    InvalidToken: (EventKind.AUTH_FAILURE, "invalid_token"),
    InvalidAuthorizationRequest: (EventKind.AUTH_FAILURE, "bad_request"),
    UnknownSession: (EventKind.AUTH_FAILURE, "session_mismatch"),
    InsufficientScope: (EventKind.SCOPE_REFUSED, "insufficient_scope"),
}
OBSERVED_REFUSALS: dict[type[Refusal], tuple[str, str]] = {
    MissingToken: ("auth.required", "missing_token"),
    RateLimited: (EventKind.RATE_LIMITED, "rate_limited"),
}


@dataclass(frozen=True)
class SecurityEvent:
    """One thing that happened. ``details`` may hold personal data: it is redacted before it is stored.

    ``address`` and ``client_id`` are for observers (per-address bursts); the audit record keeps
    them only redacted, inside the payload.
    """

    kind: EventKind | str
    outcome: str
    principal: str = ANONYMOUS
    tool: str | None = None
    client_id: str | None = None
    address: str | None = None
    latency_ms: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


class EventObserver(Protocol):
    """Sees every event as it is recorded: must be fast and must not block (schedule I/O instead)."""

    def observe(self, event: SecurityEvent) -> None: ...


class Events:
    """Fans each event out to the observers, then to the audit log (when there is one)."""

    def __init__(self, audit: AuditLog | None, hash_key: bytes, observers: Sequence[EventObserver] = ()) -> None:
        self.audit = audit
        self.hash_key = hash_key  # keyed pseudonyms: the same value gives the same hash in every record
        self.redactor = RememberingRedactor(replacement="hash", hash_key=hash_key)
        self.observers = list(observers)

    def summarize(self, arguments: Mapping[str, Any], logged_fields: Sequence[str] = ()) -> dict[str, Any]:
        return argument_summary(arguments, self.hash_key, logged_fields)

    def add_observer(self, observer: EventObserver) -> None:
        self.observers.append(observer)

    async def record(self, event: SecurityEvent) -> None:
        """Observe, then append to the audit log; raises when the audit record cannot be written."""
        self.notify(event)
        if self.audit is None:
            return
        payload = dict(event.details)
        if event.client_id is not None:
            payload["client_id"] = event.client_id
        if event.address is not None:
            payload["address"] = event.address
        await self.audit.append(
            event.kind,
            principal=event.principal,
            tool=event.tool,
            outcome=event.outcome,
            latency_ms=event.latency_ms,
            payload=self.redactor.redact_value(payload) if payload else None,
        )

    async def record_quietly(self, event: SecurityEvent) -> None:
        """``record`` for events on a path that is refusing anyway: a failed append is logged, not raised."""
        try:
            await self.record(event)
        except Exception:
            logger.exception("could not write the audit record for %s", event.kind)

    async def refused(self, refusal: Refusal, principal: Principal | None, *, tool: str | None,
                      address: str | None, required: Iterable[str] = ()) -> None:
        """Record (or only observe) a refusal of the MCP endpoint or of a tool call."""
        audited = AUDITED_REFUSALS.get(type(refusal))
        kind, outcome = audited or OBSERVED_REFUSALS.get(type(refusal), (None, None))
        if kind is None or outcome is None:
            return
        details: dict[str, Any] = {"stage": "resource"}
        if isinstance(refusal, InsufficientScope):
            details["required"] = sorted(required)
        event = SecurityEvent(kind, outcome, principal=principal_label(principal), tool=tool, address=address,
                              client_id=principal.client_id if principal else None, details=details)
        if audited:
            await self.record_quietly(event)
        else:
            self.notify(event)

    def notify(self, event: SecurityEvent) -> None:
        """Only the observers: for events not worth an audit record (e.g. each rate-limit hit)."""
        for observer in self.observers:
            try:
                observer.observe(event)
            except Exception:  # an observer's bug must not fail the request it watches
                logger.exception("event observer %s failed", type(observer).__name__)
