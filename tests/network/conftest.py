"""The API a tool calls (https on loopback, its CA trusted through ``SSL_CERT_FILE`` as OpenSSL reads it),
name lookups for made-up hosts, and a guard that fails any test connecting anywhere but loopback."""

from __future__ import annotations

import asyncio
import os
import socket
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.network.api_server import ApiServer
from tests.support.loopback import loopback_connections_only
from tests.support.tls import make_certificates

# Made-up names and what they resolve to: never a public address anyone could be reached at.
ANSWERS = {
    "private.test": ["10.0.0.5"],
    "loopback.test": ["127.0.0.1"],
    "mixed.test": ["93.184.215.14", "10.0.0.5"],
    "metadata.test": ["169.254.169.254"],
    "unresolvable.test": [],  # no such name
}


@pytest.fixture(scope="session")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The API server; the process trusts its CA (the client reads the system trust store once)."""
    tls = make_certificates(tmp_path_factory.mktemp("api-ca"))
    previous = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(tls.ca)
    server = ApiServer(tls).start()
    yield server
    server.stop()
    if previous is None:
        del os.environ["SSL_CERT_FILE"]
    else:
        os.environ["SSL_CERT_FILE"] = previous


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every event loop resolves the names in ``ANSWERS`` as listed (counting lookups), others as usual."""
    lookups: Counter[str] = Counter()
    real = asyncio.base_events.BaseEventLoop.getaddrinfo

    async def getaddrinfo(self: Any, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ANSWERS:
            return await real(self, host, port, *args, **kwargs)
        lookups[host] += 1
        if not ANSWERS[host]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in ANSWERS[host]]

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", getaddrinfo)
    return lookups


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every address a request connects to; a non-loopback one is blocked and fails the test."""
    with loopback_connections_only(monkeypatch) as attempted:
        yield attempted
