"""The official MCP SDK client identified by a Client ID Metadata Document instead of registering.

MCP authorization (client registration, priority 2): when the server advertises
``client_id_metadata_document_supported``, a client with an https ``client_metadata_url`` uses that
URL as its ``client_id`` and does not call ``/register``; the server fetches the document
(draft-ietf-oauth-client-id-metadata-document §4) and checks the redirect URI against it.

The document is served over https by a local server whose certificate comes from a CA made for the
test; ``ringfence serve`` runs with ``--allow-loopback-client-metadata`` and ``SSL_CERT_FILE`` naming
that CA (the fetcher uses ``ssl.create_default_context()``, which honours it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.oauth import (
    LOOPBACK_REDIRECT,
    MODES,
    EmbeddedServer,
    Linked,
    linked_in_each_era,
    pkce_pair,
    query_of,
    start_embedded,
)
from tests.support.tls import HttpsDocuments, TlsFiles, make_certificates

DOCUMENT_PATH = "/oauth/client.json"
CLIENT_NAME = "CIMD SDK Test Client"


@dataclass
class Cimd:
    server: EmbeddedServer
    documents: HttpsDocuments
    untrusted: HttpsDocuments

    @property
    def client_id(self) -> str:
        return self.documents.url(DOCUMENT_PATH)


def document(client_id: str) -> dict:
    return {
        "client_id": client_id,
        "client_name": CLIENT_NAME,
        "redirect_uris": [LOOPBACK_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }


@pytest.fixture(scope="module")
def cimd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cimd]:
    trusted: TlsFiles = make_certificates(tmp_path_factory.mktemp("trusted-ca"))
    documents = HttpsDocuments(trusted).start()
    documents.documents[DOCUMENT_PATH] = document(documents.url(DOCUMENT_PATH))
    # Same kind of certificate, from a CA the authorization server was not told to trust.
    untrusted = HttpsDocuments(make_certificates(tmp_path_factory.mktemp("other-ca"))).start()
    untrusted.documents[DOCUMENT_PATH] = document(untrusted.url(DOCUMENT_PATH))
    server = start_embedded(tmp_path_factory.mktemp("cimd"), "--allow-loopback-client-metadata",
                            env={"SSL_CERT_FILE": str(trusted.ca)})
    yield Cimd(server, documents, untrusted)
    server.stop_and_check()
    documents.stop()
    untrusted.stop()


@pytest.fixture(scope="module")
def linked(cimd: Cimd) -> Iterator[dict[str, Linked]]:
    """One SDK link per era, with ``client_metadata_url`` set."""
    with linked_in_each_era(cimd.server.issuer, cimd.server.account, cimd.server.mcp_url,
                            lambda mode: {"result": ("search_contacts", {"query": "cimd"})},
                            client_metadata_url=cimd.client_id) as results:
        yield results


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def test_sdk_uses_the_document_url_as_client_id_and_never_registers(cimd: Cimd, linked: dict[str, Linked],
                                                                    mode: str) -> None:
    """MCP client registration priority: CIMD before DCR; the URL is the ``client_id`` everywhere."""
    result = linked[mode]
    assert result.log.to("/register") == []
    assert query_of(result.user.authorization_urls[0])["client_id"] == cimd.client_id
    [exchange] = result.log.token_requests("authorization_code")
    assert exchange.form["client_id"] == cimd.client_id
    assert exchange.status == 200


def test_tool_call_runs_with_the_token_issued_to_the_document_client(linked: dict[str, Linked], mode: str) -> None:
    """The whole link works with a metadata-document client: the protected tool runs."""
    result = linked[mode]
    assert result.calls["result"].is_error is False
    assert result.calls["result"].structured_content == {"result": []}


def test_server_fetched_the_document_over_https(cimd: Cimd, linked: dict[str, Linked]) -> None:
    """CIMD §4: the authorization server dereferences the client_id URL (here, trusting the test CA)."""
    assert DOCUMENT_PATH in cimd.documents.fetches


def test_consent_page_names_the_domain_that_vouches_for_the_client(linked: dict[str, Linked]) -> None:
    """MCP CIMD security: the consent page shows the client's name, its verified host and the redirect host."""
    [page] = linked[MODES[0]].user.consent_pages  # the first link of this client
    assert CLIENT_NAME in page.text
    assert "Identified by localhost" in page.text
    assert "Unverified client" not in page.text
    assert "127.0.0.1:3030" in page.text


def test_consent_is_remembered_for_the_same_document_client(linked: dict[str, Linked]) -> None:
    """The second link of the same URL client, for the same scope, is not asked again (same client_id)."""
    second = linked[MODES[1]]
    assert len(second.user.login_pages) == 1
    assert second.user.consent_pages == []


def test_document_served_with_an_untrusted_certificate_is_refused(cimd: Cimd) -> None:
    """TLS is verified: a document behind a certificate from an unknown CA is never used (invalid_client)."""
    _, challenge = pkce_pair()
    response = httpx.get(f"{cimd.server.issuer}/authorize", params={
        "response_type": "code", "client_id": cimd.untrusted.url(DOCUMENT_PATH), "redirect_uri": LOOPBACK_REDIRECT,
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256", "resource": cimd.server.mcp_url,
    })
    assert response.status_code in (400, 401)
    assert "location" not in response.headers
    assert "invalid_client" in response.text
    assert cimd.untrusted.fetches == []  # the TLS handshake failed before any request was made
