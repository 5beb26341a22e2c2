"""Optional OpenTelemetry tracing: one ``ringfence.tool_call`` span around each tool call.

It uses the OpenTelemetry API only, which is a no-op until the operator configures an SDK (for
example with ``opentelemetry-instrument`` or their own ``TracerProvider``). The span carries the
tool's name and declared effect and the call's outcome: never the arguments or the caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

try:
    from opentelemetry import trace
except ImportError:  # pragma: no cover - opentelemetry-api comes with mcp; tracing is optional anyway
    trace = None  # type: ignore[assignment]

SPAN_NAME = "ringfence.tool_call"


class ToolCallSpan:
    """Handle to record the call's outcome on the span (``ok``, ``error``, ``refused``, ...)."""

    def __init__(self, span: object | None) -> None:
        self._span = span

    def outcome(self, outcome: str) -> None:
        if self._span is not None:
            self._span.set_attribute("ringfence.outcome", outcome)  # type: ignore[attr-defined]
            if outcome in ("error", "failed"):
                self._span.set_status(trace.Status(trace.StatusCode.ERROR))  # type: ignore[attr-defined]


@contextmanager
def tool_call_span(tool: str, effect: str) -> Iterator[ToolCallSpan]:
    """``with tool_call_span(spec.name, spec.effect) as span: ...; span.outcome("ok")``.

    An exception escaping the block marks the span as failed, by type name only (its message
    may hold personal data).
    """
    if trace is None or isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        yield ToolCallSpan(None)  # no SDK configured: its spans would record nothing (and cost 10 µs a call)
        return
    tracer = trace.get_tracer("ringfence")
    with tracer.start_as_current_span(SPAN_NAME, record_exception=False, set_status_on_exception=False,
                                      attributes={"ringfence.tool": tool, "ringfence.effect": effect}) as span:
        handle = ToolCallSpan(span)
        try:
            yield handle
        except Exception as exc:
            span.set_attribute("ringfence.outcome", "failed")
            span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
            raise
