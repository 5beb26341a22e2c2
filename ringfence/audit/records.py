"""What an audit record is made of, and the hashes that chain records together.

Pure functions, no database: the log writes with them and ``verify`` recomputes with them, so a
record verifies exactly when these functions give back the hashes it stores.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ringfence.store.pseudonyms import HASH_HEX_DIGITS

# The record before the first one: record #1 links to this.
GENESIS_HASH = "0" * 64

# Fixed-width UTC with microseconds: the stored string sorts as the time does, and it round-trips
# through every database byte for byte, so the hash never depends on a driver's datetime handling.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

KIND_PATTERN = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
MAX_KIND_LENGTH = 64
MAX_PRINCIPAL_LENGTH = 255
MAX_TOOL_LENGTH = 255
MAX_OUTCOME_LENGTH = 64
# The one form of a request id: an inbound X-Request-ID is accepted only in it (logs/request_ids.py); made
# ones are 32 hex digits.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
SESSION_HASH_DIGITS = HASH_HEX_DIGITS  # of the keyed hash of a host's session id (audit/correlation.py)
SESSION_HASH_PATTERN = re.compile(rf"[0-9a-f]{{{SESSION_HASH_DIGITS}}}")

# The encoder of canonical_json, made once: json.dumps builds a new one on every call with these options.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class EventKind(StrEnum):
    """The events ringfence records. Other ``area.event`` names are accepted too."""

    AUTH_FAILURE = "auth.failure"
    SCOPE_REFUSED = "scope.refused"
    TOOL_CALL = "tool.call"
    TOOL_STARTED = "tool.started"  # a write or destructive call is about to run
    CONFIRMATION_ACCEPTED = "confirmation.accepted"
    CONFIRMATION_DECLINED = "confirmation.declined"
    CONSENT_GRANTED = "consent.granted"
    CONSENT_REVOKED = "consent.revoked"
    CLIENT_REGISTERED = "client.registered"
    USER_DELETED = "user.deleted"
    USER_PROVISIONED = "user.provisioned"  # the first sign-in at a login provider made the account
    KEY_ROTATED = "key.rotated"
    INJECTION_FLAGGED = "injection.flagged"
    RATE_LIMITED = "ratelimit.exceeded"  # observed (metrics, detectors), not written to the log
    ALERT_RAISED = "alert.raised"
    PAYLOADS_ERASED = "audit.erased"  # written by the log itself when payloads are erased


def canonical_json(value: Any) -> bytes:
    """The one byte form of a JSON value that is hashed: sorted keys, no whitespace, UTF-8.

    Raises ``ValueError`` for what has no such form (NaN, infinities, lone surrogates) and
    ``TypeError`` for what is not JSON at all.
    """
    return _CANONICAL.encode(value).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload_hash(payload: Any, salt: str) -> str:
    """HMAC-SHA256 of the payload's canonical JSON, keyed with the record's random salt.

    Erasure removes the salt with the payload, so the hash that stays in the chain can no longer
    confirm a guess at the erased payload (``{"contact_id": 7}`` is easy to guess).
    """
    return _keyed_hash(canonical_json(payload), salt)


def _keyed_hash(canonical: bytes, salt: str) -> str:
    return hmac.new(bytes.fromhex(salt), canonical, hashlib.sha256).hexdigest()


def record_hash(
    *,
    seq: int,
    ts: str,
    kind: str,
    principal: str,
    tool: str | None,
    outcome: str,
    latency_ms: float | None,
    payload_hash: str | None,
    prev_hash: str,
    request_id: str | None = None,
    session_hash: str | None = None,
) -> str:
    """SHA-256 of the canonical JSON of the record's fields.

    The payload enters only through its hash, so erasing a payload leaves the chain intact. The
    request id and the session hash (added in revision 0004) enter only when the record has them:
    a record written before has neither and hashes as it did, and one written since cannot lose
    or gain either without its hash changing.
    """
    fields: dict[str, Any] = {
        "seq": seq, "ts": ts, "kind": kind, "principal": principal, "tool": tool, "outcome": outcome,
        "latency_ms": latency_ms, "payload_hash": payload_hash, "prev_hash": prev_hash,
    }
    if request_id is not None:
        fields["request_id"] = request_id
    if session_hash is not None:
        fields["session_hash"] = session_hash
    return sha256_hex(canonical_json(fields))


def format_time(moment: datetime) -> str:
    """The stored form of a time; a naive time is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(stored: str) -> datetime:
    return datetime.strptime(stored, TIME_FORMAT).replace(tzinfo=UTC)


def now() -> str:
    return format_time(datetime.now(UTC))


def check_fields(kind: str, principal: str, tool: str | None, outcome: str) -> None:
    """Refuse field values the log would store truncated, or could not store on every database."""
    if len(kind) > MAX_KIND_LENGTH or not KIND_PATTERN.fullmatch(kind):
        raise ValueError(f"audit event kind {kind!r} is not of the form area.event (lower case, e.g. 'tool.call')")
    _check_text("principal", principal, MAX_PRINCIPAL_LENGTH)
    if tool is not None:
        _check_text("tool", tool, MAX_TOOL_LENGTH)
    _check_text("outcome", outcome, MAX_OUTCOME_LENGTH)


def check_correlation(request_id: str | None, session_hash: str | None) -> None:
    """Refuse a request id or session hash not of the form the log stores (see the patterns)."""
    if request_id is not None and not (isinstance(request_id, str) and REQUEST_ID_PATTERN.fullmatch(request_id)):
        raise ValueError("audit request_id must be 1 to 128 letters, digits, '.', '_', ':' or '-'")
    if session_hash is not None and not (isinstance(session_hash, str)
                                         and SESSION_HASH_PATTERN.fullmatch(session_hash)):
        raise ValueError("audit session_hash must be 16 lower-case hex digits")


def _check_text(name: str, value: str, limit: int) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"audit {name} must be a non-empty string")
    if len(value) > limit:
        raise ValueError(f"audit {name} is longer than {limit} characters")
    if "\x00" in value:  # PostgreSQL text cannot hold NUL
        raise ValueError(f"audit {name} contains a NUL character")
    value.encode("utf-8")  # lone surrogates cannot be stored or hashed: UnicodeEncodeError


def normalize_latency(latency_ms: float | None) -> float | None:
    """Latency as the float the database gives back, so the hash is the same before and after."""
    if latency_ms is None:
        return None
    value = float(latency_ms)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"audit latency_ms must be a finite, non-negative number, not {latency_ms!r}")
    return round(value, 3)


def prepare_payload(payload: Any) -> tuple[Any, str | None, str | None, str | None]:
    """The payload as it reads back from the database (tuples become lists, …), its canonical JSON
    (the text to store: what its hash covers), a new salt, and its hash."""
    if payload is None:
        return None, None, None, None
    # An object, never a bare number: SQLite would store the text '1.0' as the integer 1.
    if not isinstance(payload, dict):
        raise TypeError(f"audit payload must be a JSON object (a dict), not {type(payload).__name__}")
    stored = json.loads(canonical_json(payload))
    text = canonical_json(stored)  # not always the first text: {10: 1, 9: 2} sorts its keys as numbers
    salt = secrets.token_hex(16)
    return stored, text.decode("utf-8"), salt, _keyed_hash(text, salt)
