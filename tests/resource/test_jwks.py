"""The issuer's JWKS: fetched over HTTP, cached, refetched at most once per interval, fail-closed when down."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest
from joserfc.jwk import ECKey

from ringfence.app import App
from ringfence.resource import verification
from ringfence.resource.tokens import JwksCache
from tests.conftest import served_trusting
from tests.support.http import challenge
from tests.support.idp import TestIdentityProvider
from tests.support.inprocess import RESOURCE, Client, serve_in_process
from tests.support.serve import ServeProcess

SEARCH = ("search_contacts", {"query": "ann"})


class Clock:
    """The JWKS cache's monotonic clock, moved by the tests instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def cold(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A JWT-only server that has not fetched the JWKS yet: its key cache is empty. Only one test may use it."""
    with served_trusting(idp, tmp_path_factory.mktemp("jwks"), introspection=False) as server:
        yield server


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def quick_refresh(idp: TestIdentityProvider, contacts_app: App, clock: Clock,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """A JWT-only server in this process allowed to refetch the JWKS every 2 s (the default is every 30 s),
    its JWKS cache on ``clock``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(verification, "JwksCache", partial(JwksCache, clock=clock))
        with serve_in_process(contacts_app, idp, tmp_path_factory.mktemp("quick"),
                              jwks_refresh_interval_seconds=2) as server:
            yield Client(server, "modern")


def test_unreachable_jwks_gets_503_never_200_and_recovers(cold: ServeProcess, idp: TestIdentityProvider) -> None:
    """Fail closed: a token that cannot be checked is refused (503 + Retry-After), then accepted once keys return."""
    token = idp.token(cold.mcp_url, scope="contacts:read")
    idp.jwks_available = False
    try:
        refused = cold.call_tool(*SEARCH, token=token)
    finally:
        idp.jwks_available = True
    assert refused.status_code == 503
    assert refused.headers["retry-after"].isdigit()
    assert refused.json()["error"] == "temporarily_unavailable"
    assert cold.call_tool(*SEARCH, token=token).status_code == 200


def test_burst_of_unknown_kids_triggers_exactly_one_jwks_refetch(quick_refresh: Client, clock: Clock,
                                                                 idp: TestIdentityProvider) -> None:
    """An unknown ``kid`` may mean rotated keys: refetch once, but never let forged kids cause a fetch storm."""
    assert quick_refresh.call_tool(*SEARCH, token=idp.token(RESOURCE, scope="contacts:read")).is_success
    clock.now += 2.1  # past the refresh interval
    before = idp.jwks_fetches
    forged = [idp.token(RESOURCE, header={"kid": f"forged-{n}"}, scope="contacts:read") for n in range(10)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda token: quick_refresh.call_tool(*SEARCH, token=token), forged))
    assert [response.status_code for response in responses] == [401] * 10
    assert {challenge(response)["error"] for response in responses} == {"invalid_token"}
    assert idp.jwks_fetches - before == 1


def test_rotated_in_signing_key_is_picked_up_by_one_refetch(quick_refresh: Client, clock: Clock,
                                                            idp: TestIdentityProvider) -> None:
    """Key rotation: a token signed by a newly published key verifies after a single refetch."""
    assert quick_refresh.call_tool(*SEARCH, token=idp.token(RESOURCE, scope="contacts:read")).is_success
    rotated = ECKey.generate_key("P-256", parameters={"kid": "es-2", "alg": "ES256", "use": "sig"})
    idp.keys["rotated"] = rotated
    try:
        clock.now += 2.1
        before = idp.jwks_fetches
        token = idp.token(RESOURCE, key=rotated, scope="contacts:read")
        assert quick_refresh.call_tool(*SEARCH, token=token).status_code == 200
        assert idp.jwks_fetches - before == 1
    finally:
        del idp.keys["rotated"]
