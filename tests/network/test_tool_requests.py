"""Network permissions for tools (issue #17 item 2), through an app served in process: a tool's requests
go only to the hosts its ``reaches=`` declares, over verified https, to public addresses (a loopback host
only when declared as one), within redirect, retry, size and time bounds, each one logged without values.

The API is a real https server on 127.0.0.1 (tests/network/api_server.py); made-up names resolve as
conftest.ANSWERS lists, and a guard fails any test that connects anywhere but loopback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import select
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ringfence import App, Scope, network
from tests.network.api_server import ApiServer
from tests.support.http import result_text, tool_result
from tests.support.idp import TestIdentityProvider
from tests.support.inprocess import Client, InProcessServer, serve_in_process, token_for

SCOPE = "net:use"
DECLARED = ("private.test", "loopback.test", "mixed.test", "metadata.test")


def network_app(api: ApiServer) -> App:
    app = App("network", scopes=[Scope(SCOPE, "Use the network tools")])

    reaches = [f"localhost:{api.port}", f"127.0.0.1:{api.port}", "unresolvable.test", *DECLARED]

    @app.tool(effect="read", scopes=[SCOPE], open_world=True, reaches=reaches)
    async def fetch(url: str, method: str = "GET", max_bytes: int = network.MAX_RESPONSE_BYTES) -> dict[str, Any]:
        """Requests a URL and says what came back."""
        response = await network.request(method, url, max_bytes=max_bytes, headers={"x-api-key": "key-9f8e7d6c"})
        return {"status": response.status_code, "body": response.text[:200]}

    @app.tool(effect="read", scopes=[SCOPE], open_world=True, reaches=reaches)
    async def fetch_with(url: str, headers: dict[str, str], method: str = "GET") -> dict[str, Any]:
        """Requests a URL with the headers given and says what came back."""
        response = await network.request(method, url, headers=headers)
        return {"status": response.status_code, "body": response.text}

    @app.tool(effect="read", scopes=[SCOPE])
    async def offline(url: str) -> str:
        """Declares no hosts, and tries anyway."""
        return (await network.get(url)).text

    return app


@pytest.fixture(scope="module")
def server(api: ApiServer, idp: TestIdentityProvider,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    with serve_in_process(network_app(api), idp, tmp_path_factory.mktemp("network")) as served:
        yield served


@pytest.fixture(scope="module")
def token(idp: TestIdentityProvider) -> str:
    return token_for(idp, SCOPE)


def call(server: InProcessServer, token: str, tool: str, **arguments: Any) -> dict[str, Any]:
    response = Client(server, "modern").call_tool(tool, arguments, token=token)
    assert response.status_code == 200, response.text
    return tool_result(response)


def fetched(server: InProcessServer, token: str, url: str, tool: str = "fetch", **arguments: Any) -> dict[str, Any]:
    result = call(server, token, tool, url=url, **arguments)
    assert result["isError"] is False, result_text(result)
    return result["structuredContent"]


def refused(server: InProcessServer, token: str, tool: str, url: str, **arguments: Any) -> str:
    """The tool error's message (an open-world tool's text comes wrapped as untrusted data)."""
    result = call(server, token, tool, url=url, **arguments)
    assert result["isError"] is True, result
    text = result_text(result)
    wrapped = re.search(r"<untrusted-data source=\"\w+\">\n(.*)\n</untrusted-data>", text, re.DOTALL)
    return wrapped.group(1) if wrapped else text


# Allowed --------------------------------------------------------------------------------------------


def test_tool_reaches_its_declared_host_over_verified_https(server: InProcessServer, token: str, api: ApiServer,
                                                             connections: list[str]) -> None:
    assert fetched(server, token, api.url("/hello")) == {"status": 200,
                                                         "body": '{"hello":"world","method":"GET"}'}
    assert set(connections) <= {"127.0.0.1", "::1"}


def test_redirect_within_the_declared_host_is_followed(server: InProcessServer, token: str, api: ApiServer) -> None:
    assert fetched(server, token, api.url("/redirect/home"))["status"] == 200
    assert api.hits["GET /hello"] >= 1


def test_each_request_is_logged_without_query_values_or_headers(server: InProcessServer, token: str, api: ApiServer,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """Logs: method, server, path with the query's names only, status, bytes, duration; never a value."""
    caplog.set_level(logging.INFO, logger="ringfence.network")
    fetched(server, token, api.url("/hello?city=Paris&secret=abc123zz"))
    [line] = [record for record in caplog.records if record.name == "ringfence.network"]
    assert (line.method, line.server, line.path, line.status, line.outcome) == (  # type: ignore[attr-defined]
        "GET", f"localhost:{api.port}", "/hello?city=&secret=", 200, "ok")
    assert line.bytes == len('{"hello":"world","method":"GET"}')  # type: ignore[attr-defined]
    written = repr(vars(line)) + line.getMessage()
    assert "Paris" not in written and "abc123zz" not in written and "key-9f8e7d6c" not in written


def test_a_long_path_segment_is_not_logged_as_it_may_be_a_credential(server: InProcessServer, token: str,
                                                                      api: ApiServer,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Some APIs put the key in the path (``/bot<token>/sendMessage``): a segment over 20 characters is ``…``."""
    caplog.set_level(logging.INFO, logger="ringfence.network")
    fetched(server, token, api.url("/bot7311024866AAEhBOweik6ad9r_QXMuTW2S/sendMessage"))
    [line] = [record for record in caplog.records if record.name == "ringfence.network"]
    assert line.path == "/…/sendMessage"  # type: ignore[attr-defined]
    assert "AAEhBOweik6ad9r" not in repr(vars(line)) + line.getMessage()


# Refused by the declaration --------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://elsewhere.example/steal", "https://localhost/hello",
                                 "https://api.localhost/hello"])
def test_host_the_tool_does_not_declare_is_refused_before_any_lookup(server: InProcessServer, token: str,
                                                                     url: str, dns: Counter[str],
                                                                     connections: list[str]) -> None:
    assert "may not reach" in refused(server, token, "fetch", url)
    assert "it is not among the hosts the tool declares (reaches=)" in refused(server, token, "fetch", url)
    assert dns == Counter() and connections == []


def test_port_the_tool_does_not_declare_is_refused(server: InProcessServer, token: str, api: ApiServer) -> None:
    text = refused(server, token, "fetch", api.url("/hello").replace(str(api.port), str(api.port + 1)))
    assert text == f"fetch may not reach localhost:{api.port + 1}: it is not among the hosts the tool declares " \
                   "(reaches=)."


def test_plain_http_is_refused_even_to_a_declared_host(server: InProcessServer, token: str, api: ApiServer,
                                                       connections: list[str]) -> None:
    text = refused(server, token, "fetch", f"http://localhost:{api.port}/hello")
    assert text == f"fetch makes https requests only; the http request to localhost:{api.port} was refused."
    assert connections == []


def test_credentials_in_the_url_are_refused(server: InProcessServer, token: str, api: ApiServer) -> None:
    text = refused(server, token, "fetch", api.url("/hello").replace("https://", "https://user:pw@"))
    assert "credentials go in headers, never in the URL" in text
    assert "pw" not in text


def test_tool_that_declares_no_hosts_makes_no_requests(server: InProcessServer, token: str, api: ApiServer) -> None:
    assert refused(server, token, "offline", api.url("/hello")) == (
        "offline declares no hosts it reaches (reaches=), so it makes no requests.")


@pytest.mark.anyio
async def test_request_outside_a_tool_call_is_refused(api: ApiServer) -> None:
    with pytest.raises(network.NetworkRefused, match="only inside a tool call"):
        await network.get(api.url("/hello"))


# Refused by the SSRF guard ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", DECLARED)
def test_declared_host_resolving_to_an_address_that_is_not_public_is_refused(
        server: InProcessServer, token: str, host: str, dns: Counter[str], connections: list[str]) -> None:
    """MCP Security Best Practices, SSRF: every resolved address must be public, the loopback one too
    unless the tool declares a loopback host itself; nothing is connected to."""
    text = refused(server, token, "fetch", f"https://{host}/internal")
    assert text == (f"{host} was refused: fetch may reach public internet addresses only, and it does not "
                    "resolve to those alone.")
    assert dns[host] == 1 and connections == []


# Redirects -------------------------------------------------------------------------------------------


def test_redirect_to_a_host_the_tool_does_not_declare_is_not_followed(server: InProcessServer, token: str,
                                                                      api: ApiServer, dns: Counter[str]) -> None:
    text = refused(server, token, "fetch", api.url("/redirect/away"))
    assert text == (f"localhost:{api.port} redirected fetch's request to elsewhere.example, which the tool does "
                    "not declare (reaches=); the redirect was not followed.")


def test_redirect_to_plain_http_is_not_followed(server: InProcessServer, token: str, api: ApiServer) -> None:
    assert "makes https requests only" in refused(server, token, "fetch", api.url("/redirect/plain"))
    assert api.hits["GET /redirect/plain"] >= 1


def test_endless_redirects_stop_after_three(server: InProcessServer, token: str, api: ApiServer) -> None:
    before = api.hits["GET /redirect/loop"]
    text = refused(server, token, "fetch", api.url("/redirect/loop"))
    assert text == f"The request to localhost:{api.port} was redirected more than 3 times; it was stopped."
    assert api.hits["GET /redirect/loop"] - before == 4


# Size ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/big/streamed", "/big/declared"])
def test_answer_past_the_byte_cap_is_cut_with_a_clear_error(server: InProcessServer, token: str, api: ApiServer,
                                                            path: str) -> None:
    text = refused(server, token, "fetch", api.url(path))
    assert text == (f"The answer from localhost:{api.port} is larger than 1048576 bytes; it was not read "
                    "further.")


def test_smaller_cap_chosen_by_the_call_applies(server: InProcessServer, token: str, api: ApiServer) -> None:
    assert "larger than 10 bytes" in refused(server, token, "fetch", api.url("/hello"), max_bytes=10)


def test_compressed_answer_is_refused_unread(server: InProcessServer, token: str, api: ApiServer) -> None:
    assert "compressed body (gzip), which was not asked for" in refused(server, token, "fetch",
                                                                        api.url("/compressed"))


# Retries ---------------------------------------------------------------------------------------------


def test_get_is_retried_on_503_and_post_is_not(server: InProcessServer, token: str, api: ApiServer) -> None:
    """RFC 9110 §9.2.2: only idempotent methods are retried; a POST is sent once whatever it gets."""
    assert fetched(server, token, api.url("/flaky"), method="POST")["status"] == 503
    assert api.hits["POST /flaky"] == 1
    assert fetched(server, token, api.url("/flaky"))["status"] == 200
    assert api.hits["GET /flaky"] == 3


def test_retry_after_longer_than_the_cap_ends_the_retries(server: InProcessServer, token: str,
                                                          api: ApiServer) -> None:
    assert fetched(server, token, api.url("/unavailable/long"))["status"] == 503
    assert api.hits["GET /unavailable/long"] == 1


def test_a_retry_after_that_is_not_ascii_digits_or_a_date_is_ignored_not_a_crash(server: InProcessServer,
                                                                                 token: str, api: ApiServer) -> None:
    """RFC 9110 §10.2.3: delay-seconds is ASCII digits; "²" passes str.isdigit but not float(), and a
    malformed value must never escape as an internal error, whatever the method."""
    odd = ["\xb2", "\xb9\xb2", "1e400", "9" * 5000, "-1", "NaN", "0x10", "Mon, 01 Jan 99999 00:00:00 GMT",
           "Fri, 31 Dec 9999 23:59:59 GMT"]
    for value in odd:
        for method in ("GET", "POST"):
            answer = fetched(server, token, api.url(f"/unavailable/odd?v={value}"), method=method)
            assert answer["status"] == 503, (value, method)


# Headers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Host", "host", "HOST", "hOsT"])
def test_a_host_header_of_the_callers_own_is_refused(server: InProcessServer, token: str, api: ApiServer,
                                                     name: str, connections: list[str]) -> None:
    """Domain fronting: the host checked, connected to and named in TLS is the URL's; another Host
    would reach a virtual host behind the same server that the tool never declared."""
    before = api.hits["GET /headers"]
    text = refused(server, token, "fetch_with", api.url("/headers"), headers={name: "internal.example"})
    assert text == "fetch_with was refused a request: it may not set a Host header; the host is always the URL's."
    assert api.hits["GET /headers"] == before and connections == []


CREDENTIALS = {"X-Api-Key": "key-9f8e7d6c", "Authorization": "Bearer tok-1a2b", "Cookie": "session=c00k1e",
               "Proxy-Authorization": "Basic cHJveHk=", "X-Custom": "custom-value"}
SAFE = {"Accept": "application/json", "Accept-Language": "fr", "Content-Type": "application/json"}


def test_a_redirect_to_another_origin_carries_none_of_the_callers_headers_but_the_safe_ones(
        server: InProcessServer, token: str, api: ApiServer) -> None:
    """httpx drops only Authorization on a cross-origin redirect; an API key or a cookie meant for one
    host must not reach another, even one the tool declares."""
    answer = fetched(server, token, api.url("/redirect/other-origin"), tool="fetch_with", method="POST",
                     headers={**CREDENTIALS, **SAFE})
    received = json.loads(answer["body"])
    assert received["host"] == f"127.0.0.1:{api.port}"
    assert {name: received.get(name.lower()) for name in SAFE} == SAFE  # a 307 keeps the body, and its type
    assert received["user-agent"] == "ringfence"
    assert not {name.lower() for name in CREDENTIALS} & set(received)  # by name: the output guard masks values


def test_a_redirect_within_the_origin_keeps_the_callers_headers(server: InProcessServer, token: str,
                                                               api: ApiServer) -> None:
    answer = fetched(server, token, api.url("/redirect/same-origin"), tool="fetch_with", method="POST",
                     headers={"X-Api-Key": "key-9f8e7d6c", "X-Custom": "custom-value"})
    assert {"x-api-key", "x-custom"} <= set(json.loads(answer["body"]))


# Name resolution and what the environment says ------------------------------------------------------


def test_a_declared_host_that_does_not_resolve_fails_as_such_not_as_a_refusal(server: InProcessServer, token: str,
                                                                              dns: Counter[str],
                                                                              connections: list[str]) -> None:
    """A name with no address is a failure to resolve; only an address that is not public is refused."""
    text = refused(server, token, "fetch", "https://unresolvable.test/hello")
    assert text == "The request to unresolvable.test failed: the name does not resolve."
    assert dns["unresolvable.test"] == 1 and connections == []


def test_resolved_addresses_are_pinned_and_never_looked_up_again(server: InProcessServer, token: str,
                                                                 api: ApiServer, monkeypatch: pytest.MonkeyPatch,
                                                                 connections: list[str]) -> None:
    """DNS rebinding: the name is looked up once and the connection goes to that answer; a second lookup
    (which would now answer a private address) is never made."""
    lookups: list[str] = []
    real = asyncio.base_events.BaseEventLoop.getaddrinfo

    async def rebinding(self: Any, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "localhost" or port != api.port:
            return await real(self, host, port, *args, **kwargs)
        lookups.append("127.0.0.1" if not lookups else "10.0.0.5")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (lookups[-1], port))]

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", rebinding)
    assert fetched(server, token, api.url("/hello"))["status"] == 200
    assert lookups == ["127.0.0.1"] and connections == ["127.0.0.1"]


@pytest.fixture
def proxy_listener() -> Iterator[socket.socket]:
    listener = socket.create_server(("127.0.0.1", 0))
    yield listener
    listener.close()


def test_proxies_and_netrc_from_the_environment_are_ignored(server: InProcessServer, token: str, api: ApiServer,
                                                            proxy_listener: socket.socket, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests go straight to the checked addresses: a proxy would get every request (and could send it
    anywhere), and .netrc would add credentials the tool never gave."""
    proxy = f"http://127.0.0.1:{proxy_listener.getsockname()[1]}"
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.setenv("NO_PROXY", "")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine localhost login someone password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    answer = fetched(server, token, api.url("/headers"), tool="fetch_with", headers={})
    assert "authorization" not in json.loads(answer["body"])
    readable, _, _ = select.select([proxy_listener], [], [], 0)  # a connection would be waiting to be accepted
    assert readable == []
