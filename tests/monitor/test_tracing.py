"""OpenTelemetry: each tool call is one ``ringfence.tool_call`` span with tool, effect and outcome only.

Needs ``opentelemetry-sdk`` (a test dependency, so a missing one fails here rather than skips);
ringfence itself uses only the API, a no-op until the operator configures an SDK.
"""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ringfence import App, ToolError
from ringfence.guards.wrapper import guard_tool
from ringfence.monitor.tracing import SPAN_NAME, tool_call_span
from ringfence.principal import authorized

SECRET_ARGUMENT = "alice@example.com"


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # once per process: the API keeps the first provider
    return exporter


def traced_app() -> App:
    app = App("traced")

    @app.tool(effect="read")
    async def lookup(email: str) -> str:
        """Look someone up."""
        return "found"

    @app.tool(effect="write", open_world=True)
    async def send(email: str) -> str:
        """Send something."""
        raise ToolError("the mail server refused")

    @app.tool(effect="read")
    async def broken(email: str) -> str:
        """Fail unexpectedly."""
        raise RuntimeError(f"internal detail about {email}")

    return app


def call(app: App, name: str) -> None:
    import anyio

    guarded = guard_tool(app.tools[name], app.catalog, confirmer=None)
    with authorized(None, name):  # what the gate binds for a call it let through
        anyio.run(lambda: guarded(email=SECRET_ARGUMENT))


def test_each_tool_call_is_one_span_with_tool_effect_and_outcome_only(spans):
    spans.clear()
    app = traced_app()
    for name in ("lookup", "send", "broken"):
        call(app, name)
    finished = {span.attributes["ringfence.tool"]: span for span in spans.get_finished_spans()}
    assert {span.name for span in finished.values()} == {SPAN_NAME}
    assert dict(finished["lookup"].attributes) == {"ringfence.tool": "lookup", "ringfence.effect": "read",
                                                   "ringfence.outcome": "ok"}
    assert finished["send"].attributes["ringfence.outcome"] == "error"
    assert finished["broken"].attributes["ringfence.outcome"] == "failed"
    assert finished["broken"].status.status_code == trace.StatusCode.ERROR
    for span in finished.values():  # no arguments, no caller, no exception text
        text = repr(dict(span.attributes)) + repr(span.events) + str(span.status.description)
        assert SECRET_ARGUMENT not in text and "internal detail" not in text


def test_an_exception_escaping_the_span_is_named_by_type_only(spans):
    spans.clear()
    with pytest.raises(ValueError), tool_call_span("lookup", "read"):
        raise ValueError(f"detail about {SECRET_ARGUMENT}")
    [span] = spans.get_finished_spans()
    assert span.attributes["ringfence.outcome"] == "failed"
    assert span.status.description == "ValueError" and not span.events
