"""Structured, redacted logs: one pipeline for every logger, request IDs, hashed host identifiers.

See the README's "Logs" section for the line format.
"""

from ringfence.logs.configuration import configure_logging
from ringfence.logs.context import bind_host_identifiers, current_context, keyed_hash
from ringfence.logs.event_lines import EventLogObserver
from ringfence.logs.formatting import RedactingFormatter
from ringfence.logs.request_ids import RequestIdMiddleware

__all__ = [
    "EventLogObserver",
    "RedactingFormatter",
    "RequestIdMiddleware",
    "bind_host_identifiers",
    "configure_logging",
    "current_context",
    "keyed_hash",
]
