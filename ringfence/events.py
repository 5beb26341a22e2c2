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
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic_core import to_jsonable_python

from ringfence.audit.log import AuditLog
from ringfence.audit.records import EventKind
from ringfence.detect.redactor import RememberingRedactor
from ringfence.ops.ratelimit import InProcessRateLimiter, Rate
from ringfence.ops.ratelimit_keys import address_bucket
from ringfence.principal import Principal
from ringfence.refusals import (
    InsufficientScope,
    InvalidAuthorizationRequest,
    InvalidToken,
    MissingToken,
    RateLimited,
    Refusal,
    UnknownSession,
    VerifierUnavailable,
)

logger = logging.getLogger("ringfence.events")

ANONYMOUS = "(anonymous)"


def principal_label(principal: Principal | None) -> str:
    """How a caller is named in audit records and metrics: the token's subject, or ``(anonymous)``.

    One server trusts one issuer, so the subject alone names the user unambiguously. A subject the
    audit log cannot hold as it is (over 255 characters, or with a NUL) is named by its SHA-256.
    """
    if principal is None:
        return ANONYMOUS
    subject = principal.subject
    if len(subject) > 255 or "\x00" in subject:
        return "sha256:" + hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()
    return subject


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON that every record can store: dates, UUIDs and models as the SDK would
    send them, and NaN or infinities (which JSON cannot hold) as text."""
    plain = to_jsonable_python(value, fallback=str)
    if isinstance(plain, float) and not math.isfinite(plain):
        return str(plain)
    if isinstance(plain, dict):
        return {key: json_safe(item) for key, item in plain.items()}
    if isinstance(plain, list):
        return [json_safe(item) for item in plain]
    return plain


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
    opted = {name: json_safe(arguments[name]) for name in logged_fields if name in arguments}
    if opted:
        summary["arguments"] = opted  # redacted like every other detail before it is stored or logged
    return summary


# The keyed hash argument_summary gives, as it gives it.
ARGUMENTS_HASH = re.compile(r"[0-9a-f]{32}")

REFUSAL_RECORDS = Rate(60, 60.0)  # audit records of refusals per source address (then only observed)

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
    VerifierUnavailable: ("auth.unavailable", "verifier_unavailable"),  # the identity provider is down
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
        self._refusal_records = InProcessRateLimiter(max_keys=10_000)

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
            payload=self._redacted(payload) if payload else None,
        )

    def _redacted(self, payload: dict[str, Any]) -> dict[str, Any]:
        """``payload`` with personal data and secrets replaced, as the audit record stores it.

        The arguments hash of a call's summary is not scanned: it is no personal data, and it is new
        on nearly every call (the redactor remembers only strings it has seen clean), so scanning it
        would cost as much as the rest of the payload.
        """
        digest = payload.get("arguments_hash")
        if not (isinstance(digest, str) and ARGUMENTS_HASH.fullmatch(digest)):
            return self.redactor.redact_value(payload)
        redacted = self.redactor.redact_value({key: value for key, value in payload.items() if key != "arguments_hash"})
        redacted["arguments_hash"] = digest
        return redacted

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
            await self.record_refusal(event)
        else:
            self.notify(event)

    async def record_refusal(self, event: SecurityEvent) -> None:
        """``record_quietly`` for refusals, at most ``REFUSAL_RECORDS`` per source address.

        Refusals need no credentials to cause: past the budget they are only observed (metrics,
        detectors, the log line), so a flood of bad tokens can neither grow the audit log at line
        rate nor slow the real calls that share its commits.
        """
        if event.address is not None:
            key = f"refusals:{address_bucket(event.address)}"
            if not (await self._refusal_records.hit(key, REFUSAL_RECORDS)).allowed:
                self.notify(event)
                return
        await self.record_quietly(event)

    def notify(self, event: SecurityEvent) -> None:
        """Only the observers: for events not worth an audit record (e.g. each rate-limit hit)."""
        for observer in self.observers:
            try:
                observer.observe(event)
            except Exception:  # an observer's bug must not fail the request it watches
                logger.exception("event observer %s failed", type(observer).__name__)
