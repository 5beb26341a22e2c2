"""What every log line of one request shares: its request ID and the host's identifiers, hashed.

Held in a context variable, so it follows the request into the MCP SDK's handlers and into worker
threads; the formatter reads it for each line. Nothing here ever holds a raw host identifier.
"""

from __future__ import annotations

import contextvars
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from ringfence.audit.correlation import HOST_SESSION_META_KEY, bind_host_session
from ringfence.store import pseudonyms

HOST_FIELD_PREFIX = "host."
MAX_HOST_IDENTIFIERS = 16
# ``_meta`` keys the host sets (``openai/session``, ``openai/subject``, ``openai/widgetSessionId``...).
_HOST_KEY = re.compile(r"^openai/[A-Za-z0-9_.-]{1,64}$")
HASH_HEX_DIGITS = pseudonyms.HASH_HEX_DIGITS


@dataclass(frozen=True)
class LogContext:
    """The request ID and extra fields (already safe to write) of the request in progress."""

    request_id: str | None = None
    fields: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


_current: contextvars.ContextVar[LogContext] = contextvars.ContextVar(
    "ringfence_log_context", default=LogContext()  # noqa: B039 - frozen, its mapping read-only
)
# Replaced by configure_logging with the deployment's pseudonym key; until then a per-process key,
# so that identifiers are never written raw even when logging was set up some other way.
_hash_key: bytes = secrets.token_bytes(32)


def set_hash_key(key: bytes) -> None:
    """The key for :func:`keyed_hash`: the deployment's pseudonym key (store/pseudonyms.py)."""
    global _hash_key
    _hash_key = key


def keyed_hash(value: str, purpose: str) -> str:
    """``value``'s keyed hash for ``purpose`` (:func:`ringfence.store.pseudonyms.keyed_hash`, the audit
    records' too) under the pseudonym key: the same across lines and instances sharing the data folder,
    and not guessable (even for a low-entropy value) without the key."""
    return pseudonyms.keyed_hash(_hash_key, purpose, value)


def current_context() -> LogContext:
    return _current.get()


def bind_request_id(request_id: str) -> contextvars.Token[LogContext]:
    """Start a request's log context (fields of an earlier request never carry over)."""
    return _current.set(LogContext(request_id=request_id))


def unbind(token: contextvars.Token[LogContext]) -> None:
    _current.reset(token)


def bind_host_identifiers(meta: Mapping[str, Any]) -> None:
    """Bind keyed hashes of the ``openai/*`` string values of a ``tools/call`` ``_meta`` to this request.

    Later lines of the request carry ``"host.openai/session": "<hash>"`` and so on; the values
    themselves (session, subject, widget session IDs) are never kept or written. ``openai/session``
    also goes to the request's audit records, hashed the same way (audit/correlation.py).
    """
    bind_host_session(meta.get(HOST_SESSION_META_KEY))
    hashed: dict[str, str] = {}
    for key, value in meta.items():
        if len(hashed) >= MAX_HOST_IDENTIFIERS:
            break
        if isinstance(key, str) and isinstance(value, str) and _HOST_KEY.match(key):
            hashed[f"{HOST_FIELD_PREFIX}{key}"] = keyed_hash(value, key)
    if hashed:
        context = _current.get()
        _current.set(replace(context, fields=MappingProxyType({**context.fields, **hashed})))
