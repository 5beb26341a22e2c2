"""Slow client metadata documents cannot stall the server (draft-ietf-oauth-client-id-metadata-document, SSRF
and denial of service; MCP Security Best Practices).

Documents are fetched on the event loop before Authlib's worker thread starts, at most 4 at once from
one host and 32 in all; one past those bounds is refused at once with ``temporarily_unavailable``
(503, ``Retry-After``) instead of waiting. Measured before this: 240 slow documents held every worker
thread, and an unrelated ``/token`` request took 23.8 s; now it takes about 10 ms.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import httpx
import pytest

from ringfence.authserver.cimd import BUSY, ClientMetadataBusy, ClientMetadataFetcher
from tests.support.held_documents import HeldDocuments
from tests.support.oauth import LOOPBACK_REDIRECT, EmbeddedServer, pkce_pair, server_errors, start_embedded

SLOW_REQUESTS = 48  # more than the 40 worker threads a fetch used to hold, each
PER_HOST = 4  # the fetcher's default bound per host


@pytest.fixture
def documents() -> Iterator[HeldDocuments]:
    held = HeldDocuments(client_name="Slow Client", redirect_uri=LOOPBACK_REDIRECT).start()
    yield held
    held.stop()


@pytest.mark.anyio
async def test_fetch_past_the_bound_per_host_or_in_all_is_refused_at_once(documents: HeldDocuments) -> None:
    """Two fetches held from 127.0.0.1: a third from there is refused, one from another host is
    admitted, and a fourth in all is refused before any connection (127.0.0.2 serves nothing)."""
    async with ClientMetadataFetcher(allow_loopback=True, max_fetches=3, max_fetches_per_host=2) as fetcher:
        held = [asyncio.create_task(fetcher.fetch(documents.url(f"/held/{index}.json"))) for index in range(2)]
        other_host = asyncio.create_task(fetcher.fetch(documents.url("/other/host.json", host="localhost")))
        await asyncio.to_thread(documents.wait_until_waiting, 3)
        for refused_url in (documents.url("/held/third.json"), "http://127.0.0.2:9/nothing.json"):
            with pytest.raises(ClientMetadataBusy) as busy:
                await fetcher.fetch(refused_url)
            assert str(busy.value) == BUSY
        documents.release()
        fetched = await asyncio.gather(*held, other_host)
        assert [document.client_name for document in fetched] == ["Slow Client"] * 3
        assert (await fetcher.fetch(documents.url("/held/after.json"))).client_name == "Slow Client"  # slots free


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    started = start_embedded(tmp_path_factory.mktemp("slow-cimd"), "--allow-loopback-client-metadata")
    yield started
    started.stop()
    # The refused authorizations answered 503 on purpose; anything else 5xx, or a traceback, fails.
    errors = [line for line in server_errors(started.logs()) if '"status":503' not in line]
    assert errors == [], "\n".join(errors)


def authorize(issuer: str, client_id: str) -> httpx.Response:
    _, challenge = pkce_pair()
    return httpx.get(f"{issuer}/authorize", timeout=30, params={
        "response_type": "code", "client_id": client_id, "redirect_uri": LOOPBACK_REDIRECT, "state": "s",
        "code_challenge": challenge, "code_challenge_method": "S256"})


def first_answers(futures: list[Future[httpx.Response]], count: int) -> list[Future[httpx.Response]]:
    """The first ``count`` requests to be answered (the refused ones), waiting at most 20 s for each."""
    done: set[Future[httpx.Response]] = set()
    remaining = set(futures)
    while len(done) < count:
        finished, remaining = wait(remaining, timeout=20, return_when=FIRST_COMPLETED)
        assert finished, f"only {len(done)} of {count} refusals arrived"
        done |= finished
    return list(done)


def test_slow_documents_do_not_delay_other_requests(server: EmbeddedServer, documents: HeldDocuments) -> None:
    """48 authorizations name documents that do not answer: 4 fetches wait on the host, 44 are refused
    at once; an unrelated token request is answered while the 4 still wait."""
    with ThreadPoolExecutor(SLOW_REQUESTS) as pool:
        pending = [pool.submit(authorize, server.issuer, documents.url(f"/slow/{index}/client.json"))
                   for index in range(SLOW_REQUESTS)]
        refused = [future.result() for future in first_answers(pending, SLOW_REQUESTS - PER_HOST)]
        documents.wait_until_waiting(PER_HOST)

        normal = httpx.post(f"{server.issuer}/token", timeout=30, data={
            "grant_type": "authorization_code", "code": "nonexistent", "client_id": "nobody"})
        assert normal.status_code in (400, 401), normal.text
        assert documents.waiting == PER_HOST  # answered while the slow fetches still wait
        assert sum(future.done() for future in pending) == SLOW_REQUESTS - PER_HOST

        documents.release()
        answers = [future.result() for future in pending]
    for response in refused:
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert "<code>temporarily_unavailable</code>" in response.text
    admitted = [response for response in answers if response.status_code != 503]
    assert len(admitted) == PER_HOST
    assert all(response.status_code == 200 and "Sign in" in response.text for response in admitted)

