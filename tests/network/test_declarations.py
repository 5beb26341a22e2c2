"""``reaches=`` and ``timeout=`` on a tool, ``tool_timeout=`` on the app: what is accepted, and the clear
error for what is not (issue #17 item 2)."""

from __future__ import annotations

from typing import Any

import pytest

from ringfence import App, DeclarationError


def declare(app: App | None = None, **declaration: Any) -> Any:
    app = app or App("declared")

    @app.tool(effect="read", **declaration)
    async def lookup() -> str:
        """Looks something up."""
        return ""

    return app.tools["lookup"]


def test_hosts_and_timeout_are_kept_as_declared() -> None:
    spec = declare(reaches=["api.example.com", "api.example.com:8443", "127.0.0.1:9000"], timeout=10)
    assert spec.reaches == frozenset({"api.example.com", "api.example.com:8443", "127.0.0.1:9000"})
    assert spec.timeout == 10.0


def test_tool_without_timeout_takes_the_apps() -> None:
    assert declare(App("slow", tool_timeout=12)).timeout == 12.0
    assert declare(App("slow", tool_timeout=12), timeout=3).timeout == 3.0
    assert declare().timeout is None  # ringfence's default (30 s) applies when the call runs


@pytest.mark.parametrize("reaches", [
    "api.example.com",  # a string, not a list
    ["https://api.example.com"],  # a scheme
    ["api.example.com/v1"],  # a path
    ["*.example.com"],  # a wildcard
    ["API.example.com"],  # not lower-case: compared exactly
    ["api.example.com:0"],  # RFC 6335 §6: ports are 1-65535
    ["api.example.com:65536"],
    ["api.example.com:"],
    ["user@api.example.com"],
    ["[::1]:443"],
    [""],
    [None],
])
def test_host_that_is_not_a_plain_host_name_is_refused(reaches: Any) -> None:
    with pytest.raises(DeclarationError, match="reaches="):
        declare(reaches=reaches)


@pytest.mark.parametrize("timeout", [0, -1, 3601, True, "10", float("nan"), float("inf")])
def test_timeout_that_is_not_a_bounded_number_of_seconds_is_refused(timeout: Any) -> None:
    with pytest.raises(DeclarationError, match="timeout= takes seconds"):
        declare(timeout=timeout)


@pytest.mark.parametrize("timeout", [0, -1, 3601, True, "30", float("nan")])
def test_app_tool_timeout_that_is_not_a_bounded_number_of_seconds_is_refused(timeout: Any) -> None:
    with pytest.raises(DeclarationError, match="tool_timeout= takes seconds"):
        App("slow", tool_timeout=timeout)
