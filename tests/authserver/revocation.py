"""What the revocation tests share: a tool call with a token, and how a revoked token is answered."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tests.support.serve import ServeProcess

SCOPE = "contacts:read"


def search(server: ServeProcess, token: str) -> httpx.Response:
    """A ``tools/call`` that needs ``contacts:read``: 200 with a live token, 401 once it is revoked."""
    return server.call_tool("search_contacts", {"query": "nobody"}, token=token)


def assert_revoked(response: httpx.Response) -> None:
    """RFC 6750 §3.1: 401 ``invalid_token``, saying why."""
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert "revoked" in response.json()["error_description"]


def refused_within(seconds: float, call: Callable[[], httpx.Response]) -> float | None:
    """How long until ``call`` is refused as revoked, polling; ``None`` when it still passed after ``seconds``."""
    began = time.monotonic()
    while True:
        response = call()
        if response.status_code == 401:
            assert_revoked(response)
            return time.monotonic() - began
        assert response.status_code == 200, response.text
        if time.monotonic() - began > seconds:
            return None
        time.sleep(0.05)
