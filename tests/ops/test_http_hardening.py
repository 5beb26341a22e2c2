"""HTTP hardening against a real `ringfence serve` with the embedded authorization server: security
headers on every answer, minimal CORS, size limits and timeouts, each refused with a clear 4xx."""

from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ringfence.config import ConfigError, Settings
from tests.support.http import assert_no_internals
from tests.support.oauth import AuthServerProcess, BrowserLikeUser, DirectClient, EmbeddedServer, start_embedded
from tests.support.serve import CONTACTS_APP, MCP_ACCEPT, ServeProcess

BROWSER_CLIENT = "https://inspector.example"  # a browser-based MCP client the operator allows
FOREIGN = "https://evil.example"
TIMEOUT_SECONDS = 2  # header and body deadlines of the server under test
HANG_GUARD = 30  # a socket read that takes longer than this means the server never answered


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    data = tmp_path_factory.mktemp("hardening")
    env = {"RINGFENCE_HEADER_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
           "RINGFENCE_BODY_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS)}
    embedded = start_embedded(data, "--allowed-origin", BROWSER_CLIENT, env=env)
    yield embedded
    embedded.stop_and_check()  # no 5xx answer and no traceback in the log, whatever the tests sent


def url(server: EmbeddedServer, path: str) -> str:
    return server.process.base_url + path


def raw_exchange(port: int, *chunks: bytes, pause: float = 0.0) -> bytes:
    """Send ``chunks`` (``pause`` seconds apart, stopping once the server answers) on a fresh connection;
    everything the server sends back until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD) as connection:
        try:
            for chunk in chunks:
                connection.sendall(chunk)
                if select.select([connection], [], [], pause)[0]:
                    break  # the server answered (or hung up) already
        except OSError:
            pass  # the server refused and closed while we were still sending
        received = b""
        try:
            while data := connection.recv(65536):
                received += data
        except ConnectionResetError:
            pass
    return received


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def assert_secured(response: httpx.Response) -> None:
    """The headers every answer carries, each exactly once, and nothing internal in the body."""
    for name, expected in [("x-content-type-options", "nosniff"), ("referrer-policy", "no-referrer"),
                           ("x-frame-options", "DENY")]:
        assert response.headers.get_list(name) == [expected], (name, response.headers)
    assert len(response.headers.get_list("content-security-policy")) == 1
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert len(response.headers.get_list("cache-control")) == 1
    assert "strict-transport-security" not in response.headers  # http on loopback: no HSTS
    assert response.status_code < 500
    assert_no_internals(response)


# Security headers on every answer ---------------------------------------------------------------

BIG = "x" * (64 * 1024 + 1)
EVERY_KIND_OF_ANSWER = [
    ("GET", "/.well-known/oauth-protected-resource/mcp", {}, None, 200),
    ("GET", "/.well-known/oauth-authorization-server", {}, None, 200),
    ("GET", "/jwks.json", {}, None, 200),
    ("GET", "/login", {}, None, 200),
    ("GET", "/account", {}, None, 200),  # the sign-in page
    ("GET", "/static/ringfence.css", {}, None, 200),
    ("GET", "/authorize", {}, None, 400),
    ("GET", "/no-such-page", {}, None, 404),
    ("GET", "/token", {}, None, 405),
    ("POST", "/token", {"content-type": "application/x-www-form-urlencoded"}, b"grant_type=password", 400),
    ("POST", "/register", {"content-type": "application/json"}, b"{not json", 400),
    ("POST", "/login", {"content-type": "application/x-www-form-urlencoded"}, b"username=a", 403),
    ("GET", "/mcp", {"host": "attacker.example"}, None, 421),
    ("POST", "/mcp", {"origin": FOREIGN, "content-type": "application/json"}, b"{}", 403),
    ("POST", "/login", {"content-type": "application/x-www-form-urlencoded"}, BIG.encode(), 413),
    ("GET", "/authorize?state=" + "x" * 9000, {}, None, 414),
    ("GET", "/login", {"x-padding": "x" * 17000}, None, 431),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status"), EVERY_KIND_OF_ANSWER,
                         ids=[f"{m} {p[:40]} {s}" for m, p, _, _, s in EVERY_KIND_OF_ANSWER])
def test_every_answer_is_nosniff_no_referrer_and_unframeable(server: EmbeddedServer, method: str, path: str,
                                                             headers: dict, body: bytes | None, status: int) -> None:
    """OWASP secure headers: nosniff, no referrer, frame-ancestors 'none' / X-Frame-Options on every route,
    refusals (404, 405, 413, 414, 421, 431) included, never twice."""
    response = httpx.request(method, url(server, path), headers=headers, content=body, timeout=10)
    assert response.status_code == status, response.text
    assert_secured(response)


def test_html_pages_keep_their_own_strict_csp(server: EmbeddedServer) -> None:
    """MCP security best practices: consent pages MUST prevent iframing; the page's CSP is kept, not replaced."""
    response = httpx.get(url(server, "/login"))
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers.get_list("content-security-policy")
    assert len(csp) == 1
    assert "frame-ancestors 'none'" in csp[0] and "form-action 'self'" in csp[0] and "default-src 'none'" in csp[0]


def test_public_metadata_keeps_its_cache_lifetime(server: EmbeddedServer) -> None:
    """A route's own Cache-Control is kept; only routes that set none get no-store."""
    assert httpx.get(url(server, "/jwks.json")).headers.get_list("cache-control") == ["public, max-age=300"]
    assert httpx.get(url(server, "/no-such-page")).headers.get_list("cache-control") == ["no-store"]


def token_response(server: EmbeddedServer) -> httpx.Response:
    """A real authorization code grant: registration, sign-in, consent, then ``/token``."""
    client = DirectClient.register(server.issuer, server.mcp_url, token_endpoint_auth_method="client_secret_post")
    user = BrowserLikeUser(server.issuer, server.account)
    try:
        code, request = client.code(user, scope="contacts:read")
        return client.redeem(code, request.verifier)
    finally:
        user.close()


def test_credentials_and_tool_results_are_never_stored(server: EmbeddedServer) -> None:
    """RFC 6749 §5.1 (token responses MUST be no-store), RFC 7591 (client secrets), and the MCP event
    stream, whose SDK header ``no-cache`` would still let a cache keep tool results."""
    token = token_response(server)
    assert token.status_code == 200
    assert token.headers.get_list("cache-control") == ["no-store"]
    registration = httpx.post(url(server, "/register"),
                              json={"redirect_uris": ["http://127.0.0.1:3030/cb"], "client_name": "x"})
    assert registration.status_code == 201
    assert registration.headers.get_list("cache-control") == ["no-store"]
    stream = server.process.initialize(token=token.json()["access_token"])
    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers.get_list("cache-control") == ["no-store, no-transform"]


def test_https_public_url_adds_hsts(tmp_path: Path) -> None:
    """RFC 6797: a server reached over https tells browsers to keep using https."""
    process = ServeProcess(CONTACTS_APP, "--public-url", "https://mcp.example.test", "--data-dir", str(tmp_path))
    process.metadata_url = process.base_url + "/no-such-page"  # ready check: any answer with the right Host
    try:
        process.launch(tmp_path)
        _wait_for(process, {"host": "mcp.example.test"})
        response = httpx.get(process.base_url + "/login", headers={"host": "mcp.example.test"})
        assert response.headers.get_list("strict-transport-security") == ["max-age=31536000"]
        refused = httpx.get(process.base_url + "/login")  # wrong Host: 421, still with HSTS
        assert refused.status_code == 421
        assert refused.headers.get_list("strict-transport-security") == ["max-age=31536000"]
    finally:
        process.stop()


def _wait_for(process: ServeProcess, headers: dict[str, str]) -> None:
    for _ in range(300):
        try:
            httpx.get(process.metadata_url, headers=headers, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"server did not start:\n{process.logs()}")


# CORS ---------------------------------------------------------------------------------------------

PUBLIC_DOCUMENTS = ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp",
                    "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/jwks.json"]
ALLOW_LISTED = [("/mcp", "POST"), ("/token", "POST"), ("/register", "POST"), ("/revoke", "POST")]
NO_CORS = ["/login", "/authorize", "/account", "/account/revoke", "/logout", "/confirm/abc", "/introspect"]


def preflight(server: EmbeddedServer, path: str, origin: str, method: str = "POST") -> httpx.Response:
    return preflight_to(url(server, path), origin, method)


def preflight_to(target: str, origin: str, method: str = "POST") -> httpx.Response:
    return httpx.options(target, headers={
        "origin": origin, "access-control-request-method": method,
        "access-control-request-headers": "authorization, content-type, mcp-protocol-version"})


@pytest.mark.parametrize("path", PUBLIC_DOCUMENTS)
def test_public_metadata_is_readable_from_any_origin_without_credentials(server: EmbeddedServer, path: str) -> None:
    """RFC 9728 / RFC 8414 discovery from browser-based clients: ``*``, which browsers never pair with cookies."""
    allowed = preflight(server, path, FOREIGN, "GET")
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "*"
    response = httpx.get(url(server, path), headers={"origin": FOREIGN})
    assert response.status_code == 200
    assert response.headers.get_list("access-control-allow-origin") == ["*"]
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize(("path", "method"), ALLOW_LISTED)
def test_preflight_from_an_allowed_origin_gets_204_with_mcp_headers(server: EmbeddedServer, path: str,
                                                                    method: str) -> None:
    """Fetch standard CORS preflight: the allowed origin echoed, Authorization and the MCP headers allowed,
    never Allow-Credentials (tokens travel in Authorization, not cookies)."""
    response = preflight(server, path, BROWSER_CLIENT)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == BROWSER_CLIENT
    assert method in response.headers["access-control-allow-methods"]
    allowed = {name.strip().lower() for name in response.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "mcp-session-id", "mcp-protocol-version", "last-event-id",
            "mcp-method", "mcp-name"} <= allowed
    assert int(response.headers["access-control-max-age"]) > 0
    assert "origin" in response.headers["vary"].lower()
    assert "access-control-allow-credentials" not in response.headers
    assert "content-length" not in response.headers  # RFC 9110 §8.6: none on a 204


@pytest.mark.parametrize(("path", "method"), ALLOW_LISTED)
def test_preflight_from_an_origin_not_allowed_gets_403(server: EmbeddedServer, path: str, method: str) -> None:
    response = preflight(server, path, FOREIGN, method)
    assert response.status_code == 403
    assert response.json()["error"] == "invalid_origin"
    assert "access-control-allow-origin" not in response.headers
    assert_no_internals(response)


def test_allowed_origin_can_read_the_bearer_challenge_on_mcp(server: EmbeddedServer) -> None:
    """A browser client must see WWW-Authenticate (RFC 9728 §5.1 discovery) on the 401: it is exposed."""
    response = server.process.call_tool("delete_contact", {"contact_id": 1}, headers={"origin": BROWSER_CLIENT})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == BROWSER_CLIENT
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "www-authenticate" in exposed and "mcp-session-id" in exposed


def test_foreign_origin_gets_no_cors_on_the_token_endpoint(server: EmbeddedServer) -> None:
    """A form post needs no preflight; the answer is still unreadable to a page from an origin not allowed."""
    response = httpx.post(url(server, "/token"), data={"grant_type": "authorization_code"},
                          headers={"origin": FOREIGN})
    assert response.status_code in (400, 401)
    assert not any(name.startswith("access-control-") for name in response.headers)


def test_foreign_origin_on_mcp_is_still_refused(server: EmbeddedServer) -> None:
    """MCP transports: servers MUST validate Origin (DNS rebinding); CORS does not loosen it."""
    response = server.process.call_tool("app_info", headers={"origin": FOREIGN})
    assert response.status_code == 403
    assert response.json()["error"] == "invalid_origin"


@pytest.mark.parametrize("path", NO_CORS)
def test_pages_and_introspection_get_no_cors(server: EmbeddedServer, path: str) -> None:
    """Sign-in, consent, account and confirmation pages are same-origin only: no preflight is ever granted."""
    for response in (preflight(server, path, BROWSER_CLIENT), httpx.get(url(server, path),
                                                                       headers={"origin": BROWSER_CLIENT})):
        assert response.status_code < 500
        assert not any(name.startswith("access-control-") for name in response.headers), (path, response.headers)


# Size limits --------------------------------------------------------------------------------------

FORM_ROUTES = ["/login", "/logout", "/authorize", "/token", "/revoke", "/introspect", "/register", "/confirm/abc",
               "/account/revoke"]


@pytest.mark.parametrize("path", FORM_ROUTES)
def test_body_over_64_kib_gets_413_on_every_route(server: EmbeddedServer, path: str) -> None:
    """Bounded work per request on every route, not only /mcp: announced by Content-Length or chunked."""
    announced = httpx.post(url(server, path), content=BIG.encode(),
                           headers={"content-type": "application/x-www-form-urlencoded"})
    chunked = httpx.post(url(server, path), content=(b"x" * 16384 for _ in range(5)),
                         headers={"content-type": "application/x-www-form-urlencoded"})
    assert "content-length" not in chunked.request.headers
    for response in (announced, chunked):
        assert response.status_code == 413, response.text
        assert response.json()["error"] == "request_too_large"
        assert "65536 bytes" in response.json()["error_description"]
        assert response.headers["connection"] == "close"
        assert_no_internals(response)


def test_body_at_the_limit_is_served(server: EmbeddedServer) -> None:
    """The limit is not off by one: exactly 64 KiB reaches the endpoint (which refuses the content, not the size)."""
    body = b"grant_type=x&pad=" + b"y" * (64 * 1024 - 17)
    response = httpx.post(url(server, "/token"), content=body,
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert len(body) == 64 * 1024
    assert response.status_code == 400
    assert response.json()["error"] != "request_too_large"


def test_mcp_keeps_its_own_larger_body_limit(server: EmbeddedServer) -> None:
    """/mcp takes up to max_body_bytes (1 MiB): a 100 KiB message is not refused for its size."""
    response = server.process.post(None, content=b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": '
                                   b'{"pad": "' + b"x" * 100_000 + b'"}}')
    assert response.status_code != 413


def test_overlong_url_gets_414(server: EmbeddedServer) -> None:
    """URLs over max_url_bytes (8 KiB): 414, with a hint to send parameters in the body."""
    response = httpx.get(url(server, "/authorize?state=" + "x" * 9000))
    assert response.status_code == 414
    assert response.json()["error"] == "uri_too_long"


def test_request_line_longer_than_the_whole_head_limit_gets_414(server: EmbeddedServer) -> None:
    """Refused while still arriving: the server stops reading past 16 KiB of an unfinished request line."""
    answer = raw_exchange(server.process.port, b"GET /authorize?state=" + b"x" * 40000, b"y" * 100, pause=0.2)
    assert status_of(answer) == 414
    assert b"uri_too_long" in answer and b"x-content-type-options: nosniff" in answer


def test_oversized_headers_get_431(server: EmbeddedServer) -> None:
    """RFC 6585 §5: more than max_header_bytes (16 KiB) of headers, or more than 100 of them."""
    large = httpx.get(url(server, "/login"), headers={"x-padding": "x" * 17000})
    many = httpx.get(url(server, "/login"), headers={f"x-h{i}": "1" for i in range(101)})
    for response in (large, many):
        assert response.status_code == 431
        assert response.json()["error"] == "request_header_fields_too_large"


def test_unfinished_oversized_head_gets_431_without_waiting_for_the_end(server: EmbeddedServer) -> None:
    port = server.process.port
    answer = raw_exchange(port, f"GET /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Big: ".encode() + b"x" * 40000,
                          b"y", pause=0.2)
    assert status_of(answer) == 431
    assert b"connection: close" in answer


def test_oversized_head_pipelined_after_a_request_gets_431_after_its_answer(server: EmbeddedServer) -> None:
    """A refusal never cuts into an answer under way: the first request is answered whole, then 431 and close."""
    port = server.process.port
    first = f"GET /no-such-page HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    answer = raw_exchange(port, first + f"GET /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Big: ".encode()
                          + b"x" * 40000, b"y", pause=0.2)
    assert answer.startswith(b"HTTP/1.1 404 Not Found\r\n")
    second = answer[answer.index(b"\r\n\r\nNot Found") + len(b"\r\n\r\nNot Found"):]
    assert status_of(second) == 431 and b"connection: close" in second


def test_bearer_token_of_max_token_bytes_fits_in_the_header_limit(server: EmbeddedServer) -> None:
    """The header limit leaves room for the largest token the gate accepts (8 KiB): 401, not 431."""
    response = server.process.call_tool("delete_contact", {"contact_id": 1}, token="a" * 8000)
    assert response.status_code == 401


# Timeouts -----------------------------------------------------------------------------------------


def test_slow_body_gets_408_and_the_connection_is_closed(server: EmbeddedServer) -> None:
    """Slow-loris on the body: after body_timeout_seconds the server answers 408 and hangs up
    (the recv loop ends, so the connection was closed; HANG_GUARD only bounds a broken server)."""
    port = server.process.port
    head = (f"POST /token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded"
            f"\r\nContent-Length: 1000\r\n\r\n").encode()
    answer = raw_exchange(port, head, *[b"a"] * 30, pause=0.25)
    assert status_of(answer) == 408
    assert b"request_timeout" in answer and b"connection: close" in answer.lower()


def test_slow_body_on_mcp_gets_408(server: EmbeddedServer) -> None:
    port = server.process.port
    head = (f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: {MCP_ACCEPT}\r\nContent-Length: 500\r\n\r\n{{").encode()
    answer = raw_exchange(port, head, *[b" "] * 30, pause=0.25)
    assert status_of(answer) == 408


def test_slow_head_gets_408_and_the_connection_is_closed(server: EmbeddedServer) -> None:
    """Slow-loris on the headers: a head still unfinished after header_timeout_seconds gets 408."""
    answer = raw_exchange(server.process.port, b"GET /login HTTP/1.1\r\n", *[b"X-A: b\r\n"] * 30, pause=0.25)
    assert status_of(answer) == 408
    assert b"request_timeout" in answer


def test_head_dripped_a_byte_at_a_time_after_an_answer_gets_408(server: EmbeddedServer) -> None:
    """Slow-loris on a kept-alive connection: the deadline runs again from the answer, and a byte now and
    then does not extend it (uvicorn's own keep-alive timer stops at the first byte)."""
    port = server.process.port
    drip = f"GET /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Padding: {'x' * 100}".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD) as connection:
        connection.sendall(f"GET /no-such-page HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        first = b""
        while not first.endswith(b"\r\n\r\nNot Found"):
            data = connection.recv(65536)
            assert data, f"connection closed after {first!r}"
            first += data
        second = b""
        for byte in drip:  # one byte every 0.1 s until the server answers: 408 after header_timeout_seconds
            connection.sendall(bytes([byte]))
            if select.select([connection], [], [], 0.1)[0]:
                break
        while data := connection.recv(65536):
            second += data
    assert first.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert status_of(second) == 408 and b"request_timeout" in second


def test_idle_connection_is_closed_without_an_answer(server: EmbeddedServer) -> None:
    """A connection that never sends a byte is dropped after the head deadline (uvicorn alone keeps it forever)."""
    assert raw_exchange(server.process.port) == b""


def test_kept_alive_connection_serves_a_second_request(server: EmbeddedServer) -> None:
    """The head deadline re-arms per request: two requests on one connection are both answered."""
    port = server.process.port
    request = f"GET /no-such-page HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD) as connection:
        for _ in range(2):
            connection.sendall(request)
            answer = b""
            while not answer.endswith(b"\r\n\r\nNot Found"):  # one whole answer: head, then the 9-byte body
                data = connection.recv(65536)
                assert data, f"connection closed after {answer!r}"
                answer += data
            answers.append(answer)
            time.sleep(0.3)
    assert [answer.split(b"\r\n", 1)[0] for answer in answers] == [b"HTTP/1.1 404 Not Found"] * 2


def test_shutdown_does_not_wait_forever_for_an_open_event_stream(tmp_path: Path) -> None:
    """Graceful shutdown is bounded (shutdown_timeout_seconds): an open GET /mcp stream would otherwise keep
    uvicorn waiting for ever. The process exits on its own after SIGINT, without being killed."""
    embedded = start_embedded(tmp_path, env={"RINGFENCE_SHUTDOWN_TIMEOUT_SECONDS": "1"})
    process = embedded.process
    try:
        access_token = token_response(embedded).json()["access_token"]
        session = process.initialize(token=access_token).headers["mcp-session-id"]
        headers = {"authorization": f"Bearer {access_token}", "mcp-session-id": session,
                   "mcp-protocol-version": "2025-11-25", "accept": "text/event-stream"}
        with httpx.stream("GET", process.mcp_url, headers=headers, timeout=HANG_GUARD) as stream:
            assert stream.status_code == 200
            process.interrupt()  # SIGINT, once: graceful
            assert process.process is not None
            assert process.process.wait(timeout=HANG_GUARD) == 0
    finally:
        process.stop()


def test_auth_server_alone_has_the_same_headers_and_cors(tmp_path: Path) -> None:
    """``ringfence auth-server`` is assembled separately; it gets the same hardening and --allowed-origin."""
    process = AuthServerProcess(resource="http://127.0.0.1:1/mcp", scopes_from=CONTACTS_APP,
                                args=("--data-dir", str(tmp_path), "--allowed-origin", BROWSER_CLIENT))
    process.start(tmp_path)
    try:
        assert_secured(httpx.get(process.base_url + "/no-such-page"))
        assert preflight_to(process.base_url + "/token", BROWSER_CLIENT).status_code == 204
        assert preflight_to(process.base_url + "/token", FOREIGN).status_code == 403
        assert httpx.post(process.base_url + "/login", content=BIG.encode()).status_code == 413
    finally:
        process.stop()


# Settings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "message"), [
    ({"max_url_bytes": 20000, "max_header_bytes": 16384}, "max_url_bytes"),
    ({"max_header_bytes": 8192, "max_token_bytes": 8192}, "max_header_bytes"),
    ({"header_timeout_seconds": 0}, "header_timeout_seconds"),
    ({"body_timeout_seconds": 10_000}, "body_timeout_seconds"),
    ({"shutdown_timeout_seconds": 0}, "shutdown_timeout_seconds"),
])
def test_limits_outside_their_bounds_stop_start_up(overrides: dict, message: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("RINGFENCE_")]:
        monkeypatch.delenv(name)
    with pytest.raises(ConfigError, match=message):
        Settings.load(**overrides)
