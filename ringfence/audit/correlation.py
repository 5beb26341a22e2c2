"""Which request and which host session an audit record belongs to.

Each record carries the request id its log lines carry (logs/request_ids.py binds it), so a record
and the lines of its request can be joined for as long as both are kept, and a keyed hash of the
host's session id, so an operator can gather the records of one conversation without the records
holding the id itself. The host's session id is, in order of preference:

1. ``openai/session`` in the call's ``_meta``: ChatGPT's anonymized conversation id (Apps SDK,
   request ``_meta``); it outlives MCP sessions and exists in the stateless 2026-07-28 era too;
2. the ``Mcp-Session-Id`` header of a 2025-11-25 session.

The raw id stays in memory for the request only; the record stores its keyed hash with the source as
purpose, made by the one keyed-hash unit (store/pseudonyms.py) under the deployment's pseudonym key: the
function and key of the log lines' ``host.openai/session`` field, so a record's hash also finds its
session's log lines. Without the key the hash cannot be turned back into the id.
"""

from __future__ import annotations

import contextvars
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from ringfence.store.pseudonyms import PSEUDONYM_KEY_NAME, existing_pseudonym_key, keyed_hash

SESSION_KEY_NAME = PSEUDONYM_KEY_NAME  # the deployment's one pseudonym key, the logs' too
HOST_SESSION_META_KEY = "openai/session"
MCP_SESSION_SOURCE = "mcp-session-id"
SESSION_SOURCES = (HOST_SESSION_META_KEY, MCP_SESSION_SOURCE)
# MCP 2025-11-25 transports §session management: a session id "MUST only contain visible ASCII
# characters (ranging from 0x21 to 0x7E)". The length bound is ours: the SDK's are 32 hex digits.
_MCP_SESSION_ID = re.compile(r"[\x21-\x7e]{1,256}")
MAX_HOST_SESSION_LENGTH = 256


@dataclass(frozen=True)
class Correlation:
    """The request id and the host's session id (raw, in memory only) of the request in progress."""

    request_id: str | None = None
    session_source: str | None = None  # one of SESSION_SOURCES
    session_id: str | None = field(default=None, repr=False)  # never in a repr, a traceback's locals


_current: contextvars.ContextVar[Correlation] = contextvars.ContextVar(
    "ringfence_audit_correlation", default=Correlation()  # noqa: B039 - frozen
)


def current_correlation() -> Correlation:
    return _current.get()


def bind_request(request_id: str, mcp_session_id: str | None = None) -> contextvars.Token[Correlation]:
    """Start a request's correlation (nothing of an earlier request carries over); an ``Mcp-Session-Id``
    that is not a well-formed session id is ignored."""
    session = mcp_session_id if mcp_session_id and _MCP_SESSION_ID.fullmatch(mcp_session_id) else None
    return _current.set(Correlation(request_id, MCP_SESSION_SOURCE if session else None, session))


def bind_host_session(session_id: object) -> None:
    """The host's own session id (``openai/session``) for the rest of this request; it takes the place
    of the ``Mcp-Session-Id``. Anything but a string of 1 to 256 characters is ignored."""
    if isinstance(session_id, str) and 0 < len(session_id) <= MAX_HOST_SESSION_LENGTH:
        _current.set(replace(_current.get(), session_source=HOST_SESSION_META_KEY, session_id=session_id))


def unbind(token: contextvars.Token[Correlation]) -> None:
    _current.reset(token)


def session_hash(key: bytes, source: str, session_id: str) -> str:
    """The keyed hash a record stores for ``session_id`` from ``source``: the source is the purpose, so an
    ``openai/session`` hashes as the log lines' ``host.openai/session`` field does (logs/context.py)."""
    return keyed_hash(key, source, session_id)


def session_hashes(key: bytes, session_id: str) -> list[str]:
    """Every hash a record of ``session_id`` may store (one per source): what a lookup matches."""
    return [session_hash(key, source, session_id) for source in SESSION_SOURCES]


def existing_session_key(data_dir: Path) -> bytes | None:
    """The data folder's pseudonym key, or ``None`` when there is none (it is never made here)."""
    return existing_pseudonym_key(data_dir)
