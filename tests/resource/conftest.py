"""Fixtures of the in-process request-path tests (test_pipeline*.py): one app served in-process per
refusal style, and every kind of client of it. Modules that define their own ``servers`` or
``client`` fixture keep theirs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.idp import TestIdentityProvider
from tests.support.inprocess import CLIENTS, Client, Servers, client_of, serve_each_style


@pytest.fixture(scope="module")
def servers(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with serve_each_style(idp, tmp_path_factory) as servers:
        yield servers


@pytest.fixture(params=CLIENTS, ids="-".join)
def client(request: pytest.FixtureRequest, servers: Servers) -> Client:
    """Every kind of client (each refusal style; ChatGPT under auto), in both protocol eras."""
    return client_of(servers, *request.param)
