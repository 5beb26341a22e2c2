"""Fixtures of the sign-in tests: ``oidc-provider`` under Node, and ``ringfence serve`` of the reference
app signing people in there (``allowed-domain=example.com``), local passwords left on; the stand-in that
answers as GitHub and as an OpenID provider do."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.idp import free_port
from tests.support.login import CORP_CALLBACK, NodeOpenIdProvider
from tests.support.login_standin import LoginStandIn
from tests.support.oauth import EmbeddedServer, start_embedded

Linked = tuple[NodeOpenIdProvider, EmbeddedServer]


@pytest.fixture(scope="module")
def provider_and_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Linked]:
    data_dir = tmp_path_factory.mktemp("openid")
    port = free_port()
    provider = NodeOpenIdProvider(f"http://127.0.0.1:{port}{CORP_CALLBACK}").start()
    try:
        server = start_embedded(data_dir, "--login-provider",
                                provider.spec(data_dir / "corp.secret", "allowed-domain=example.com"), port=port)
        yield provider, server
        server.stop_and_check()
    finally:
        provider.stop()


@pytest.fixture
def provider(provider_and_server: Linked) -> NodeOpenIdProvider:
    return provider_and_server[0]


@pytest.fixture
def server(provider_and_server: Linked) -> EmbeddedServer:
    return provider_and_server[1]


@pytest.fixture(scope="module")
def standin() -> Iterator[LoginStandIn]:
    provider = LoginStandIn().start()
    yield provider
    provider.stop()
