"""Fixtures of the client tests: one ``ringfence serve`` of the reference app with the embedded server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.oauth import EmbeddedServer, start_embedded


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """The reference app, embedded authorization server, defaults only; stopped with a check that it
    never answered 5xx nor logged a traceback."""
    server = start_embedded(tmp_path_factory.mktemp("clients"))
    yield server
    server.stop_and_check()
