"""The issuer's JWKS: fetched over HTTP, cached, refetched at most once per interval, fail-closed when down."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from joserfc.jwk import ECKey

from tests.conftest import external_idp_args
from tests.support.http import challenge
from tests.support.idp import TestIdentityProvider
from tests.support.serve import CONTACTS_APP, ServeProcess, start_together, stop_together

SEARCH = ("search_contacts", {"query": "ann"})


@pytest.fixture(scope="module")
def servers(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, ...]]:
    """Two JWT-only servers started together; see ``cold`` and ``quick_refresh``."""
    data = tmp_path_factory.mktemp("jwks")
    args, _ = external_idp_args(idp, introspection=False)
    cold = ServeProcess(CONTACTS_APP, *args, "--data-dir", str(data / "cold"))
    quick = ServeProcess(CONTACTS_APP, *args, "--data-dir", str(data / "quick"),
                         env={"RINGFENCE_JWKS_REFRESH_INTERVAL_SECONDS": "2"})
    yield start_together(data, cold, quick)
    stop_together(cold, quick)


@pytest.fixture(scope="module")
def cold(servers: tuple[ServeProcess, ...]) -> ServeProcess:
    """A server that has not fetched the JWKS yet: its key cache is empty. Only one test may use it."""
    return servers[0]


@pytest.fixture(scope="module")
def quick_refresh(servers: tuple[ServeProcess, ...]) -> ServeProcess:
    """A server allowed to refetch the JWKS every 2 s (the default is every 30 s)."""
    return servers[1]


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


def test_burst_of_unknown_kids_triggers_exactly_one_jwks_refetch(quick_refresh: ServeProcess,
                                                                 idp: TestIdentityProvider) -> None:
    """An unknown ``kid`` may mean rotated keys: refetch once, but never let forged kids cause a fetch storm."""
    assert quick_refresh.call_tool(*SEARCH, token=idp.token(quick_refresh.mcp_url, scope="contacts:read")).is_success
    time.sleep(2.1)  # past the refresh interval
    before = idp.jwks_fetches
    forged = [idp.token(quick_refresh.mcp_url, header={"kid": f"forged-{n}"}, scope="contacts:read") for n in range(10)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda token: quick_refresh.call_tool(*SEARCH, token=token), forged))
    assert [response.status_code for response in responses] == [401] * 10
    assert {challenge(response)["error"] for response in responses} == {"invalid_token"}
    assert idp.jwks_fetches - before == 1


def test_rotated_in_signing_key_is_picked_up_by_one_refetch(quick_refresh: ServeProcess,
                                                            idp: TestIdentityProvider) -> None:
    """Key rotation: a token signed by a newly published key verifies after a single refetch."""
    assert quick_refresh.call_tool(*SEARCH, token=idp.token(quick_refresh.mcp_url, scope="contacts:read")).is_success
    rotated = ECKey.generate_key("P-256", parameters={"kid": "es-2", "alg": "ES256", "use": "sig"})
    idp.keys["rotated"] = rotated
    try:
        time.sleep(2.1)
        before = idp.jwks_fetches
        token = idp.token(quick_refresh.mcp_url, key=rotated, scope="contacts:read")
        assert quick_refresh.call_tool(*SEARCH, token=token).status_code == 200
        assert idp.jwks_fetches - before == 1
    finally:
        del idp.keys["rotated"]
