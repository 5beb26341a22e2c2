"""Client ID Metadata Document fetching: URL rules, SSRF refusals, document rules, caching.

Documents are served by a real HTTP(S) server on 127.0.0.1 and fetched with ``allow_loopback=True``
(the development switch); name lookups other hosts need are faked, and a guard fails any test
that tries to open a connection to a non-loopback address.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc.jwk import ECKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ringfence.authserver import cimd
from ringfence.authserver.cimd import (
    ClientMetadataDocument,
    ClientMetadataError,
    ClientMetadataFetcher,
    cache_lifetime,
    is_client_id_url,
    is_public_address,
    parse_document,
)
from ringfence.authserver.client_keys import ClientKeys, ClientKeySetFetcher, ClientKeysUnavailable
from tests.support.idp import free_port
from tests.support.loopback import loopback_connections_only

pytestmark = pytest.mark.anyio

# RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
ERROR_DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")


# A real document server ------------------------------------------------------------------------


@dataclass
class Answer:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    stream_bytes: int = 0  # stream this many bytes, chunked, without a Content-Length


class DocumentServer:
    """Serves configured answers on 127.0.0.1 (optionally over TLS) and counts every request."""

    __test__ = False

    def __init__(self, *, certfile: str | None = None, keyfile: str | None = None) -> None:
        self.port = free_port()
        self.certfile, self.keyfile = certfile, keyfile
        self.answers: dict[str, Answer] = {}
        self.hits: Counter[str] = Counter()
        self.host_headers: dict[str, list[str]] = {}
        self._server: uvicorn.Server | None = None

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.certfile else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def serve(self, path: str, document: Any = None, **answer: Any) -> str:
        if document is not None:
            answer["body"] = json.dumps(document).encode()
        self.answers[path] = Answer(**answer)
        return self.url(path)

    def total_hits(self) -> int:
        return sum(self.hits.values())

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        self.hits[path] += 1
        self.host_headers.setdefault(path, []).append(request.headers.get("host", ""))
        answer = self.answers.get(path)
        if answer is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        if answer.stream_bytes:

            async def chunks() -> Any:
                for _ in range(answer.stream_bytes // 1024):
                    yield b" " * 1024

            return StreamingResponse(chunks(), media_type="application/json", headers=answer.headers)
        return Response(answer.body, status_code=answer.status, media_type="application/json", headers=answer.headers)

    def start(self) -> DocumentServer:
        app = Starlette(routes=[Route("/{path:path}", self._handle)])
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            ssl_certfile=self.certfile,
            ssl_keyfile=self.keyfile,
        )
        self._server = uvicorn.Server(config)
        threading.Thread(target=self._server.run, daemon=True).start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("document server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True


def issue_certificates(directory: Path, name: str) -> tuple[str, str, str]:
    """A throwaway CA and a server certificate for ``name``: (ca.pem, cert.pem, key.pem)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ringfence test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return tuple(str(path) for path in paths)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def server() -> Iterator[DocumentServer]:
    documents = DocumentServer().start()
    yield documents
    documents.stop()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DocumentServer, str]]:
    """An https server on 127.0.0.1 whose certificate names ``cimd.test``, and its CA file."""
    ca, cert, key = issue_certificates(tmp_path_factory.mktemp("tls"), "cimd.test")
    documents = DocumentServer(certfile=cert, keyfile=key).start()
    yield documents, ca
    documents.stop()


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every address the fetcher connects to; a non-loopback one is blocked and fails the test."""
    with loopback_connections_only(monkeypatch) as attempted:
        yield attempted


class FakeResolver:
    """Stands in for the loop's getaddrinfo for made-up names; real names go to the real one."""

    def __init__(self, loop: asyncio.AbstractEventLoop, answers: dict[str, list[list[str]]]) -> None:
        self._real = loop.getaddrinfo
        self._answers = answers  # name -> successive answers (the last one repeats)
        self.lookups: Counter[str] = Counter()

    async def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in self._answers:
            return await self._real(host, port, *args, **kwargs)
        answers = self._answers[host]
        addresses = answers[min(self.lookups[host], len(answers) - 1)]
        self.lookups[host] += 1
        return [
            (socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
            for address in addresses
        ]


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[list[str]]]) -> FakeResolver:
    loop = asyncio.get_running_loop()
    resolver = FakeResolver(loop, answers)
    monkeypatch.setattr(loop, "getaddrinfo", resolver)
    return resolver


def document_for(url: str, **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "client_id": url,
        "client_name": "ChatGPT",
        "redirect_uris": ["https://chatgpt.com/connector/oauth/abc123"],
    }
    document.update(overrides)
    return {key: value for key, value in document.items() if value is not None}


async def refusal(fetcher: ClientMetadataFetcher, url: str) -> str:
    """The error a fetch raises; its message must be fit for an OAuth error_description."""
    with pytest.raises(ClientMetadataError) as caught:
        await fetcher.fetch(url)
    message = str(caught.value)
    assert ERROR_DESCRIPTION.fullmatch(message), message
    assert caught.value.__cause__ is None
    return message


def dev_fetcher(**options: Any) -> ClientMetadataFetcher:
    options.setdefault("timeout", 2.0)
    return ClientMetadataFetcher(allow_loopback=True, **options)


# Client identifier URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "https://chatgpt.com/oauth/abc123/client.json",
        "https://client.example.com/client",
        "https://client.example.com:8443/oauth/client.json",
        "https://client.example.com/client?version=2",  # CIMD §3: SHOULD NOT, but allowed
    ],
)
def test_https_url_with_a_path_is_a_client_id_url(value: str) -> None:
    """CIMD §3: https, a path component, optionally a port."""
    assert is_client_id_url(value)


@pytest.mark.parametrize(
    "value",
    [
        "https://client.example.com",  # no path
        "https://client.example.com/",  # root path only
        "https://client.example.com/client#main",  # fragment
        "https://client.example.com/client#",  # empty fragment
        "https://user@client.example.com/client",  # userinfo
        "https://user:pass@client.example.com/client",
        "http://client.example.com/client",  # http, not loopback
        "ftp://client.example.com/client",
        "HTTPS://client.example.com/client",
        "https://client.example.com/a/../client",  # dot segments
        "https://client.example.com/./client",
        "https://client.example.com/a/%2E%2E/client",
        "https:///client",  # no host
        "https://client.example.com:99999/client",  # bad port
        "https://client example.com/client",
        "https://client.example.com/client\n",
        "https://client.example.com\\@evil.example/client",
        "https://b\u00fccher.example/client",
        "//client.example.com/client",
        "https://client.example.com/" + "a" * 2100,
        "",
        "client-123",
        None,
    ],
)
def test_url_breaking_a_client_identifier_rule_is_not_a_client_id_url(value: Any) -> None:
    """CIMD §3: https, a path, no fragment, no userinfo, no dot segments; plain ASCII only."""
    assert not is_client_id_url(value)
    assert not is_client_id_url(value, allow_loopback=True)


def test_http_loopback_url_is_a_client_id_url_only_in_development_mode() -> None:
    """CIMD SSRF: the loopback exception is for development only; https stays the rule otherwise."""
    for value in ("http://127.0.0.1:8000/client.json", "http://localhost:8000/client.json", "http://[::1]:8000/c"):
        assert not is_client_id_url(value)
        assert is_client_id_url(value, allow_loopback=True)
    assert not is_client_id_url("http://10.0.0.1/client.json", allow_loopback=True)
    assert not is_client_id_url("http://127.0.0.1:8000/", allow_loopback=True)


# Address classifier ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("1.1.1.1", True),
        ("2606:4700:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::808:808", True),  # NAT64 of a public address
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("127.1.2.3", False),
        ("0.0.0.0", False),  # noqa: S104 - classified here, never bound
        ("100.64.0.1", False),  # shared address space (carrier-grade NAT)
        ("169.254.169.254", False),  # link-local, cloud metadata
        ("224.0.0.1", False),  # multicast
        ("239.255.255.250", False),
        ("240.0.0.1", False),  # reserved
        ("255.255.255.255", False),
        ("192.0.2.1", False),  # documentation
        ("198.18.0.1", False),  # benchmarking
        ("::1", False),
        ("::", False),
        ("fe80::1", False),  # link-local
        ("fd00::1", False),  # unique-local fc00::/7
        ("fc00::1", False),
        ("fec0::1", False),  # deprecated site-local
        ("ff02::1", False),  # multicast
        ("::ffff:10.0.0.1", False),  # IPv4-mapped private
        ("::ffff:127.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("2002:a00:1::1", False),  # 6to4 of 10.0.0.1
        ("2001::1", False),  # Teredo
        ("2001:db8::1", False),  # documentation
    ],
)
def test_address_classifier_allows_only_globally_routable_addresses(address: str, public: bool) -> None:
    """MCP Security Best Practices, SSRF: block private, loopback, link-local (169.254/16, fe80::/10),
    fc00::/7; CIMD SSRF: every special-use address (RFC 6890), also when embedded in IPv6."""
    assert is_public_address(ipaddress.ip_address(address)) is public


# Fetching: accepted documents -------------------------------------------------------------------


async def test_valid_document_is_accepted_with_defaults(server: DocumentServer) -> None:
    """CIMD §4.1 / MCP: client_id, client_name and redirect_uris; RFC 7591 §2 defaults for the rest."""
    url = server.url("/valid/client.json")
    server.serve("/valid/client.json", document_for(url))
    async with dev_fetcher() as fetcher:
        document = await fetcher.fetch(url)
    assert document == ClientMetadataDocument(
        client_id=url,
        client_name="ChatGPT",
        redirect_uris=("https://chatgpt.com/connector/oauth/abc123",),
        token_endpoint_auth_method="none",
        grant_types=("authorization_code",),
        response_types=("code",),
        client_uri=None,
        logo_uri=None,
        scope=None,
        jwks_uri=None,
        jwks=None,
    )
    assert server.host_headers["/valid/client.json"] == [f"127.0.0.1:{server.port}"]


async def test_document_with_private_key_jwt_and_optional_fields_is_accepted(server: DocumentServer) -> None:
    """Apps SDK §2.2: ChatGPT prefers private_key_jwt, with its JWKS published at a URL."""
    url = server.url("/pkjwt/client.json")
    server.serve(
        "/pkjwt/client.json",
        document_for(
            url,
            token_endpoint_auth_method="private_key_jwt",
            jwks_uri="https://chatgpt.com/oauth/jwks.json",
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            client_uri="https://chatgpt.com",
            logo_uri="https://chatgpt.com/logo.png",
            scope="contacts:read contacts:write",
            redirect_uris=["https://chatgpt.com/connector/oauth/abc123", "http://127.0.0.1:33418/callback"],
        ),
    )
    async with dev_fetcher() as fetcher:
        document = await fetcher.fetch(url)
    assert document.token_endpoint_auth_method == "private_key_jwt"
    assert document.jwks_uri == "https://chatgpt.com/oauth/jwks.json"
    assert document.grant_types == ("authorization_code", "refresh_token")
    assert document.scope == "contacts:read contacts:write"
    assert document.redirect_uris[1] == "http://127.0.0.1:33418/callback"


async def test_localhost_name_is_resolved_once_and_the_host_header_keeps_the_name(
    server: DocumentServer, connections: list[str]
) -> None:
    """The connection goes to a checked address; the request still names the URL's host."""
    url = server.url("/named/client.json", host="localhost")
    server.serve("/named/client.json", document_for(url))
    async with dev_fetcher() as fetcher:
        await fetcher.fetch(url)
    assert server.host_headers["/named/client.json"] == [f"localhost:{server.port}"]
    assert connections and set(connections) <= {"127.0.0.1", "::1"}


# Fetching: refused documents --------------------------------------------------------------------


async def test_document_whose_client_id_differs_from_url_is_refused(server: DocumentServer) -> None:
    """CIMD §4.1 and MCP: the document's client_id MUST match the URL exactly (simple string comparison)."""
    url = server.url("/mismatch/client.json")
    server.serve("/mismatch/client.json", document_for(url + "/"))
    async with dev_fetcher() as fetcher:
        assert await refusal(fetcher, url) == cimd.CLIENT_ID_MISMATCH


async def test_document_naming_another_client_is_refused(server: DocumentServer) -> None:
    """CIMD §4.1: a document cannot claim a different (e.g. better-known) client's identity."""
    url = server.url("/impostor/client.json")
    server.serve("/impostor/client.json", document_for("https://chatgpt.com/oauth/abc123/client.json"))
    async with dev_fetcher() as fetcher:
        assert await refusal(fetcher, url) == cimd.CLIENT_ID_MISMATCH


@pytest.mark.parametrize("body", [b"<html>hello</html>", b"", b"\xff\xfe{}", b'{"a": NaN}', b"[" * 5000])
async def test_document_that_is_not_json_is_refused(server: DocumentServer, body: bytes) -> None:
    """MCP: the AS MUST validate the document structure is valid JSON (RFC 8259, UTF-8)."""
    path = f"/not-json/{len(body)}-{body[:2].hex()}.json"
    url = server.serve(path, body=body)
    async with dev_fetcher() as fetcher:
        assert await refusal(fetcher, url) == cimd.NOT_JSON


@pytest.mark.parametrize("document", [[], ["client_id"], "client", 42, None])
async def test_document_that_is_not_a_json_object_is_refused(server: DocumentServer, document: Any) -> None:
    """CIMD §4.1: the document is a JSON object of client metadata."""
    path = f"/not-object/{type(document).__name__}-{len(json.dumps(document))}.json"
    url = server.serve(path, body=json.dumps(document).encode())
    async with dev_fetcher() as fetcher:
        assert await refusal(fetcher, url) == cimd.NOT_AN_OBJECT


async def test_document_with_duplicate_member_names_is_refused(server: DocumentServer) -> None:
    """RFC 8259 §4: duplicate names are ambiguous, so which client_id counts is never guessed."""
    url = server.url("/duplicate/client.json")
    body = (
        f'{{"client_id": "https://chatgpt.com/oauth/x/client.json", "client_id": "{url}", '
        '"client_name": "x", "redirect_uris": ["https://a.example/cb"]}'
    )
    server.serve("/duplicate/client.json", body=body.encode())
    async with dev_fetcher() as fetcher:
        assert await refusal(fetcher, url) == cimd.NOT_JSON


async def test_document_without_redirect_uris_is_refused(server: DocumentServer) -> None:
    """MCP (CIMD client side): the document MUST include client_id, client_name and redirect_uris."""
    url = server.url("/no-redirects/client.json")
    server.serve("/no-redirects/client.json", document_for(url, redirect_uris=None))
    async with dev_fetcher() as fetcher:
        assert "redirect_uris" in await refusal(fetcher, url)


async def test_document_with_http_redirect_uri_on_a_public_host_is_refused(server: DocumentServer) -> None:
    """MCP: redirect URIs MUST be either localhost URLs or use HTTPS."""
    url = server.url("/http-redirect/client.json")
    server.serve("/http-redirect/client.json", document_for(url, redirect_uris=["http://chatgpt.com/callback"]))
    async with dev_fetcher() as fetcher:
        assert "redirect URI" in await refusal(fetcher, url)


@pytest.mark.parametrize("secret", [{"client_secret": "s3cret"}, {"client_secret_expires_at": 0}])
async def test_document_carrying_a_client_secret_is_refused(server: DocumentServer, secret: dict[str, Any]) -> None:
    """CIMD §4.1: client_secret and client_secret_expires_at MUST NOT be used (no shared secrets)."""
    path = f"/secret/{next(iter(secret))}.json"
    url = server.url(path)
    server.serve(path, document_for(url, **secret))
    async with dev_fetcher() as fetcher:
        assert await refusal(fetcher, url) == cimd.HAS_SHARED_CREDENTIAL


async def test_streamed_body_larger_than_the_cap_is_refused_while_reading(server: DocumentServer) -> None:
    """CIMD §6.6: stop reading at the cap; a chunked body with no Content-Length is cut off."""
    url = server.serve("/huge/stream.json", stream_bytes=1024 * 1024)
    async with dev_fetcher(max_bytes=4096) as fetcher:
        started = time.monotonic()
        assert await refusal(fetcher, url) == "The client metadata document is larger than 4096 bytes."
        assert time.monotonic() - started < 2


async def test_body_declared_larger_than_the_cap_is_refused(server: DocumentServer) -> None:
    """CIMD §6.6: a Content-Length over the cap is refused before the body is read."""
    url = server.url("/huge/declared.json")
    server.serve("/huge/declared.json", document_for(url, client_uri="https://a.example/" + "x" * 1500))
    async with dev_fetcher(max_bytes=1024) as fetcher:
        assert "larger than 1024 bytes" in await refusal(fetcher, url)


async def test_redirect_is_not_followed(server: DocumentServer) -> None:
    """CIMD (Client Information Discovery): the AS MUST NOT automatically follow HTTP redirects."""
    target = server.url("/moved/target.json")
    server.serve("/moved/target.json", document_for(target))
    url = server.serve("/moved/client.json", status=302, headers={"location": target})
    async with dev_fetcher() as fetcher:
        assert await refusal(fetcher, url) == cimd.REDIRECTED
    assert server.hits["/moved/target.json"] == 0


@pytest.mark.parametrize("status", [201, 203, 404, 500])
async def test_answer_other_than_200_is_refused(server: DocumentServer, status: int) -> None:
    """CIMD: the document MUST be served with 200 OK; every other status is an error."""
    path = f"/status/{status}.json"
    url = server.url(path)
    server.serve(path, document_for(url), status=status)
    async with dev_fetcher() as fetcher:
        assert await refusal(fetcher, url) == cimd.NOT_OK


async def test_slow_server_times_out(server: DocumentServer) -> None:
    """One deadline covers resolution, connection and reading."""
    url = server.url("/slow/client.json")
    server.serve("/slow/client.json", document_for(url), delay=3.0)
    async with dev_fetcher(timeout=0.5) as fetcher:
        started = time.monotonic()
        assert await refusal(fetcher, url) == cimd.TIMED_OUT
        assert time.monotonic() - started < 1.5


async def test_unreachable_server_gives_a_safe_message(server: DocumentServer) -> None:
    """Connection errors never leak their text (addresses, ports) into error_description."""
    url = f"http://127.0.0.1:{free_port()}/closed/client.json"
    async with dev_fetcher() as fetcher:
        assert await refusal(fetcher, url) == cimd.FETCH_FAILED


# SSRF ------------------------------------------------------------------------------------------


async def test_loopback_http_url_is_refused_without_a_connection_outside_development_mode(
    server: DocumentServer, connections: list[str]
) -> None:
    """MCP Security Best Practices, SSRF: require HTTPS except in explicit development mode."""
    url = server.url("/prod/http.json")
    server.serve("/prod/http.json", document_for(url))
    async with ClientMetadataFetcher() as fetcher:
        assert await refusal(fetcher, url) == cimd.NOT_A_CLIENT_ID_URL
    assert server.hits["/prod/http.json"] == 0
    assert connections == []


async def test_https_localhost_url_is_refused_without_a_connection_outside_development_mode(
    server: DocumentServer, connections: list[str]
) -> None:
    """MCP Security Best Practices, SSRF: block loopback; CIMD SSRF: no special-use addresses."""
    url = f"https://localhost:{server.port}/prod/https.json"
    server.serve("/prod/https.json", document_for(url))
    async with ClientMetadataFetcher() as fetcher:
        assert await refusal(fetcher, url) == cimd.HOST_NOT_PUBLIC
    assert server.hits["/prod/https.json"] == 0
    assert connections == []


PRIVATE_LITERALS = [
    "https://10.0.0.1/c.json",
    "https://[fd00::1]/c.json",
    "https://169.254.169.254/latest",
    "https://[fe80::1]/c.json",
    "https://100.64.0.1/c.json",
    "https://[::ffff:10.0.0.1]/c.json",
    "https://0.0.0.0/c.json",
    "https://224.0.0.1/c.json",
]


@pytest.mark.parametrize(
    ("url", "allow_loopback"),
    [(url, flag) for url in PRIVATE_LITERALS for flag in (False, True)] + [("https://127.0.0.1/c.json", False)],
)
async def test_private_ip_literal_is_refused_before_any_lookup_or_connection(
    url: str, allow_loopback: bool, monkeypatch: pytest.MonkeyPatch, connections: list[str]
) -> None:
    """MCP Security Best Practices, SSRF: private, link-local and unique-local addresses are never
    fetched, in development mode too (only loopback is relaxed there)."""
    resolver = fake_dns(monkeypatch, {})
    async with ClientMetadataFetcher(allow_loopback=allow_loopback) as fetcher:
        assert await refusal(fetcher, url) == cimd.HOST_NOT_PUBLIC
    assert resolver.lookups == Counter()
    assert connections == []


async def test_host_with_any_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, connections: list[str]
) -> None:
    """MCP Security Best Practices, SSRF: every resolved address is checked, not just the first."""
    fake_dns(monkeypatch, {"mixed.test": [["93.184.215.14", "10.0.0.5"]], "meta.test": [["169.254.169.254"]]})
    async with ClientMetadataFetcher(allow_loopback=True) as fetcher:
        assert await refusal(fetcher, "https://mixed.test/client.json") == cimd.HOST_NOT_PUBLIC
        assert await refusal(fetcher, "https://meta.test/client.json") == cimd.HOST_NOT_PUBLIC
    assert connections == []


async def test_unresolvable_host_gets_the_same_refusal_as_a_private_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that does not resolve gives a safe message, not the resolver's error, and the same one
    as a name resolving to a private address: a refusal never tells which internal names exist."""

    async def fail(*_: Any, **__: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fail)
    async with ClientMetadataFetcher() as fetcher:
        assert await refusal(fetcher, "https://nowhere.test/client.json") == cimd.HOST_NOT_PUBLIC


async def test_https_fetch_connects_to_the_pinned_address_and_verifies_the_name(
    tls_server: tuple[DocumentServer, str], monkeypatch: pytest.MonkeyPatch, connections: list[str]
) -> None:
    """MCP Security Best Practices, SSRF: pin the resolved address (DNS checks have TOCTOU issues).

    The name resolves to loopback once, then "rebinds" to a private address; the fetch uses the
    first answer only, and TLS still checks the certificate for cimd.test (SNI and Host too).
    """
    documents, ca = tls_server
    resolver = fake_dns(monkeypatch, {"cimd.test": [["127.0.0.1"], ["10.0.0.1"]]})
    url = documents.url("/tls/client.json", host="cimd.test")
    documents.serve("/tls/client.json", document_for(url))
    async with dev_fetcher(ssl_context=ssl.create_default_context(cafile=ca)) as fetcher:
        document = await fetcher.fetch(url)
    assert document.client_id == url
    assert resolver.lookups == Counter({"cimd.test": 1})
    assert connections == ["127.0.0.1"]
    assert documents.host_headers["/tls/client.json"] == [f"cimd.test:{documents.port}"]


async def test_https_fetch_refuses_a_certificate_for_another_name(
    tls_server: tuple[DocumentServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pinning the address does not weaken TLS: the certificate must name the URL's host."""
    documents, ca = tls_server
    fake_dns(monkeypatch, {"other.test": [["127.0.0.1"]]})
    url = documents.url("/tls/other.json", host="other.test")
    documents.serve("/tls/other.json", document_for(url))
    async with dev_fetcher(ssl_context=ssl.create_default_context(cafile=ca)) as fetcher:
        assert await refusal(fetcher, url) == cimd.FETCH_FAILED
    assert documents.hits["/tls/other.json"] == 0


# Caching ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "options", "hits"),
    [
        ({"cache-control": "max-age=60"}, {}, 1),
        ({"cache-control": "public, max-age=60"}, {}, 1),
        ({}, {}, 1),  # default_cache_seconds
        ({}, {"default_cache_seconds": 0}, 2),
        ({"cache-control": "no-store"}, {}, 2),
        ({"cache-control": "no-cache, max-age=60"}, {}, 2),
        ({"cache-control": "max-age=0"}, {}, 2),
        ({"cache-control": "max-age=60"}, {"max_cache_seconds": 0}, 2),
        ({"cache-control": "max-age=60", "age": "60"}, {}, 2),
        ({"expires": "Thu, 01 Jan 1970 00:00:00 GMT"}, {}, 2),
    ],
)
async def test_cache_follows_http_cache_headers(
    server: DocumentServer, headers: dict[str, str], options: dict[str, int], hits: int
) -> None:
    """MCP / CIMD §4.4: cache respecting HTTP cache headers, within the AS's own bounds."""
    path = f"/cache/{abs(hash((tuple(headers.items()), tuple(options.items()))))}.json"
    url = server.url(path)
    server.serve(path, document_for(url), headers=headers)
    async with dev_fetcher(**options) as fetcher:
        first = await fetcher.fetch(url)
        second = await fetcher.fetch(url)
    assert first == second
    assert server.hits[path] == hits


async def test_failed_fetch_is_not_cached(server: DocumentServer) -> None:
    """CIMD §4.4: error responses and invalid documents MUST NOT be cached."""
    url = server.url("/flaky/client.json")
    server.serve("/flaky/client.json", document_for(url), status=500, headers={"cache-control": "max-age=600"})
    async with dev_fetcher() as fetcher:
        assert await refusal(fetcher, url) == cimd.NOT_OK
        server.serve(
            "/flaky/client.json", document_for(url, client_secret="x"), headers={"cache-control": "max-age=600"}
        )
        assert await refusal(fetcher, url) == cimd.HAS_SHARED_CREDENTIAL
        server.serve("/flaky/client.json", document_for(url), headers={"cache-control": "max-age=600"})
        assert (await fetcher.fetch(url)).client_id == url
    assert server.hits["/flaky/client.json"] == 3


async def test_concurrent_fetches_of_one_url_share_one_request(server: DocumentServer) -> None:
    """Many authorization requests for one new client cause one fetch, not a burst."""
    url = server.url("/burst/client.json")
    server.serve("/burst/client.json", document_for(url), delay=0.3, headers={"cache-control": "no-store"})
    async with dev_fetcher() as fetcher:
        documents = await asyncio.gather(*(fetcher.fetch(url) for _ in range(8)))
    assert {document.client_id for document in documents} == {url}
    assert server.hits["/burst/client.json"] == 1


async def test_closed_fetcher_refuses_to_fetch() -> None:
    """aclose() ends the fetcher's life; later use is a programming error."""
    fetcher = ClientMetadataFetcher()
    await fetcher.aclose()
    with pytest.raises(RuntimeError):
        await fetcher.fetch("https://chatgpt.com/oauth/abc/client.json")


@pytest.mark.parametrize(
    ("cache_control", "extra", "seconds"),
    [
        (None, {}, 300),
        ("max-age=60", {}, 60),
        ("MAX-AGE=60", {}, 60),
        ('max-age="60"', {}, 60),
        ("max-age=999999", {}, 86400),
        ("max-age=60", {"age": "10"}, 50),
        ("max-age=60, max-age=60", {}, 60),
        ("max-age=60, max-age=120", {}, 0),
        ("max-age=-1", {}, 0),
        ("max-age=soon", {}, 0),
        ("max-age", {}, 0),
        ("no-store", {}, 0),
        ("no-cache", {}, 0),
        ("private, max-age=30", {}, 30),
        (None, {"expires": "0"}, 0),
        ("max-age=60", {"expires": "0"}, 60),
    ],
)
def test_cache_lifetime_from_headers(cache_control: str | None, extra: dict[str, str], seconds: int) -> None:
    """RFC 9111 §4.2: max-age (minus Age), else Expires, else the default; capped; malformed means 0."""
    assert cache_lifetime(cache_control, default=300, maximum=86400, **extra) == seconds


def test_cache_lifetime_from_future_expires() -> None:
    """RFC 9111 §5.3: Expires gives the lifetime when max-age is absent."""
    expires = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 3590 <= cache_lifetime(None, expires=expires, default=300, maximum=86400) <= 3600


# Document rules (no network) -------------------------------------------------------------------

CLIENT = "https://chatgpt.com/oauth/abc123/client.json"


def refused_document(**overrides: Any) -> str:
    with pytest.raises(ClientMetadataError) as caught:
        parse_document(CLIENT, document_for(CLIENT, **overrides))
    message = str(caught.value)
    assert ERROR_DESCRIPTION.fullmatch(message), message
    return message


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "client_secret_jwt", "client_secret"])
def test_document_with_shared_secret_auth_method_is_refused(method: str) -> None:
    """CIMD §4.1: token_endpoint_auth_method MUST NOT be a shared-symmetric-secret method."""
    assert "client-secret" in refused_document(token_endpoint_auth_method=method)


@pytest.mark.parametrize("method", ["tls_client_auth", "", 7, ["none"]])
def test_document_with_unsupported_auth_method_is_refused(method: Any) -> None:
    """Only "none" and "private_key_jwt" (what ChatGPT uses, Apps SDK §2.2) are accepted."""
    assert "not supported" in refused_document(token_endpoint_auth_method=method)


def test_private_key_jwt_without_keys_is_refused() -> None:
    """CIMD §6.2: a private_key_jwt client publishes its public keys, inline (jwks) or at a jwks_uri."""
    assert "jwks or a jwks_uri" in refused_document(token_endpoint_auth_method="private_key_jwt")


def test_private_key_jwt_with_inline_jwks_is_accepted() -> None:
    """RFC 7591 §2: jwks carries the keys by value, for clients that do not host a jwks_uri."""
    jwks = {"keys": [ECKey.generate_key("P-256").as_dict(private=False)]}
    document = parse_document(CLIENT, document_for(CLIENT, token_endpoint_auth_method="private_key_jwt", jwks=jwks))
    assert document.jwks == jwks
    assert document.jwks_uri is None


def test_private_key_jwt_with_both_jwks_and_jwks_uri_is_refused() -> None:
    """RFC 7591 §2: "jwks_uri" and "jwks" MUST NOT both be present."""
    jwks = {"keys": [ECKey.generate_key("P-256").as_dict(private=False)]}
    assert "both" in refused_document(token_endpoint_auth_method="private_key_jwt", jwks=jwks,
                                      jwks_uri="https://chatgpt.com/oauth/jwks.json")


def test_document_publishing_a_private_key_is_refused() -> None:
    """CIMD (Credential and Key Material Restrictions): only public keys may be published."""
    jwks = {"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "d": "private"}]}
    assert "private key" in refused_document(jwks=jwks)


@pytest.mark.parametrize(
    "key",
    [
        {"kty": "oct", "k": "c2hhcmVkLXNlY3JldA"},  # a shared secret is not a public key
        RSAKey.generate_key(2048).as_dict(private=True),
        ECKey.generate_key("P-256").as_dict(private=True),
    ],
    ids=["symmetric", "RSA private", "EC private"],
)
def test_private_key_jwt_keys_with_private_or_symmetric_material_are_refused(key: dict[str, Any]) -> None:
    """CIMD key material restrictions; RFC 7523 needs public keys: a secret can never verify an assertion."""
    assert "private key" in refused_document(token_endpoint_auth_method="private_key_jwt", jwks={"keys": [key]})


@pytest.mark.parametrize(
    "key",
    [
        {**ECKey.generate_key("P-256").as_dict(private=False), "use": "enc"},
        {"kty": "RSA", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1Wl", "e": "AQAB"},
        {"kty": "EC", "crv": "P-256", "x": "not-a-point", "y": "not-a-point"},
        {"kty": "unknown"},
    ],
    ids=["encryption key", "short RSA key", "invalid EC key", "unknown key type"],
)
def test_private_key_jwt_keys_that_cannot_verify_signatures_are_refused(key: dict[str, Any]) -> None:
    """RFC 7517 §4.2 ``use``; RFC 7518 §3.3: RSA keys of 2048 bits or more: every published key must be a
    usable public signing key, or the document is refused."""
    assert "jwks is not a JSON Web Key Set" in refused_document(token_endpoint_auth_method="private_key_jwt",
                                                                jwks={"keys": [key]})


@pytest.mark.parametrize(
    "redirect_uris",
    [
        [],
        "https://chatgpt.com/cb",
        [42],
        ["https://chatgpt.com/cb#frag"],
        ["https://chatgpt.com/cb#"],
        ["/relative/callback"],
        ["cursor://callback"],
        ["javascript:alert(1)"],
        ["http://chatgpt.com.127.0.0.1.nip.io/cb"],
        ["https://user:pw@chatgpt.com/cb"],
        ["https://chatgpt.com/cb"] * 21,
    ],
)
def test_document_with_unacceptable_redirect_uris_is_refused(redirect_uris: Any) -> None:
    """MCP: redirect URIs MUST be localhost or https; OAuth 2.1: absolute, without a fragment; bounded."""
    assert "redirect" in refused_document(redirect_uris=redirect_uris)


@pytest.mark.parametrize("uri", ["http://localhost:3000/callback", "http://127.0.0.1/cb", "http://[::1]:9/cb"])
def test_loopback_http_redirect_uri_is_accepted(uri: str) -> None:
    """RFC 8252 §7.3 / MCP: native clients redirect to loopback over http."""
    assert parse_document(CLIENT, document_for(CLIENT, redirect_uris=[uri])).redirect_uris == (uri,)


@pytest.mark.parametrize("name", [None, "", "   ", 42, "x" * 201, "Chat\x00GPT", "Chat\u202eTPG"])
def test_document_with_unacceptable_client_name_is_refused(name: Any) -> None:
    """MCP: client_name is required; it is shown on the consent page, so it is bounded and plain."""
    assert "client_name" in refused_document(client_name=name)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("grant_types", "authorization_code"),
        ("grant_types", []),
        ("grant_types", ["x"] * 11),
        ("response_types", [None]),
        ("scope", "contacts:read  contacts:write"),
        ("scope", 'a"b'),
        ("scope", ["contacts:read"]),
        ("client_uri", "http://chatgpt.com"),
        ("logo_uri", "javascript:alert(1)"),
        ("jwks_uri", "file:///etc/passwd"),
        ("jwks", {"keys": "none"}),
    ],
)
def test_document_with_malformed_optional_field_is_refused(field: str, value: Any) -> None:
    """RFC 7591 §2 field types; CIMD SSRF: only known URL schemes are accepted."""
    assert field in refused_document(**{field: value})


# A private_key_jwt client's jwks_uri: fetched by the same guarded fetcher ----------------------------


def key_set(*keys: ECKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in keys]}


async def test_jwks_uri_on_a_private_address_is_refused_before_any_connection(connections: list[str]) -> None:
    """MCP Security Best Practices, SSRF: a client's jwks_uri is as client-chosen as its document URL."""
    async with ClientKeySetFetcher(allow_loopback=True) as fetcher:
        assert await refusal(fetcher, "https://169.254.169.254/latest/jwks.json") == cimd.HOST_NOT_PUBLIC
        assert await refusal(fetcher, "http://chatgpt.com/jwks.json") == ClientKeySetFetcher.refused_url
    assert connections == []


async def test_jwks_uri_redirect_is_not_followed_and_private_keys_are_refused(server: DocumentServer) -> None:
    """CIMD rules for what is fetched (no redirects), and only public keys may be published."""
    moved = server.serve("/keys/moved.json", status=302, headers={"location": "http://10.0.0.1/jwks.json"})
    private = server.serve("/keys/private.json", {"keys": [ECKey.generate_key("P-256").as_dict(private=True)]})
    async with ClientKeySetFetcher(allow_loopback=True, timeout=2.0) as fetcher:
        assert await refusal(fetcher, moved) == cimd.REDIRECTED
        assert "private key material" in await refusal(fetcher, private)


async def test_unknown_kid_fetches_the_key_set_afresh_once_per_interval(server: DocumentServer) -> None:
    """A cached key set (HTTP cache headers) is fetched afresh when an assertion names a kid it lacks (the
    client rotated its keys), at most once per interval per URL: unknown kids cannot hammer a key server."""
    old, new = (ECKey.generate_key("P-256", parameters={"kid": kid}) for kid in ("old", "new"))
    url = server.serve("/keys/rotating.json", key_set(old), headers={"cache-control": "max-age=300"})
    now = [1000.0]
    async with ClientKeySetFetcher(allow_loopback=True, timeout=2.0) as fetcher:
        keys = ClientKeys(fetcher, refetch_seconds=30, clock=lambda: now[0])
        assert await keys.key_for(None, url, "old", "ES256") is not None
        server.serve("/keys/rotating.json", key_set(new), headers={"cache-control": "max-age=300"})
        assert await keys.key_for(None, url, "old", "ES256") is not None  # from the cache: no fetch
        assert server.hits["/keys/rotating.json"] == 1
        assert (await keys.key_for(None, url, "new", "ES256")).kid == "new"  # type: ignore[union-attr]
        assert server.hits["/keys/rotating.json"] == 2
        assert await keys.key_for(None, url, "stranger", "ES256") is None  # within the interval: no fetch
        assert server.hits["/keys/rotating.json"] == 2
        now[0] += 31
        assert await keys.key_for(None, url, "stranger", "ES256") is None
        assert server.hits["/keys/rotating.json"] == 3


async def test_unreachable_jwks_uri_makes_the_keys_unavailable(server: DocumentServer) -> None:
    """Fail closed: keys that cannot be fetched are an error, never an empty set that verifies nothing."""
    url = server.serve("/keys/gone.json", status=404)
    async with ClientKeySetFetcher(allow_loopback=True, timeout=2.0) as fetcher:
        with pytest.raises(ClientKeysUnavailable):
            await ClientKeys(fetcher).key_for(None, url, "any", "ES256")
