"""An app that fails on purpose, for the repeated-error alerts: a tool that always raises, and a
tool whose budget is one call an hour for all callers together."""

from __future__ import annotations

from ringfence import App, Rate, RateLimits, Scope

app = App("failing", scopes=[Scope("probe:use", "Use the probes")],
          rate_limits=RateLimits(tools={"scarce": Rate(1, 3600.0)}))


@app.tool(effect="read", scopes=["probe:use"])
async def always_fails() -> str:
    """Fails every time, as a tool whose backend is down does."""
    raise RuntimeError("the backend is down")


@app.tool(effect="read", scopes=["probe:use"])
async def scarce() -> str:
    """Allowed once an hour, whoever calls it."""
    return "done"
