"""A guard for tests that make outbound connections: only loopback addresses may be reached."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import pytest


@contextmanager
def loopback_connections_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every address httpcore connects to inside the block; a non-loopback one is blocked and fails the test."""
    attempted: list[str] = []
    real_connect = httpcore.AnyIOBackend.connect_tcp

    async def guarded(self: Any, host: str, port: int, **kwargs: Any) -> Any:
        attempted.append(host)
        if not ipaddress.ip_address(host).is_loopback:
            raise httpcore.ConnectError("test guard: non-loopback connection blocked")
        return await real_connect(self, host, port, **kwargs)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", guarded)
    yield attempted
    assert all(ipaddress.ip_address(host).is_loopback for host in attempted), attempted
