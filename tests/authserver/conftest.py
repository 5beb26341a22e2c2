"""Fixtures of the embedded authorization server tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.oauth import EmbeddedServer, server_errors, start_embedded


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """One ``ringfence serve`` of the reference app with the embedded authorization server, defaults only.

    Shared by the modules that need nothing special; each registers its own clients, so consents and
    grants never mix. Modules that change server-wide state (keys, login throttling) start their own.
    Registrations are limited to 30 an hour per address: the modules sharing it stay well below.
    """
    server = start_embedded(tmp_path_factory.mktemp("embedded"))
    yield server
    server.stop_and_check()  # including what module-scoped fixtures did, outside no_server_errors


@pytest.fixture
def no_server_errors(embedded: EmbeddedServer) -> Iterator[None]:
    """After the test: nothing it did made the server answer 5xx or log a traceback."""
    start = len(embedded.logs())
    yield
    errors = server_errors(embedded.logs()[start:])
    assert errors == [], "\n".join(errors)
