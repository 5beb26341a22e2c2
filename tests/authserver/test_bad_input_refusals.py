"""Malformed input at every OAuth endpoint gets a 4xx that echoes nothing, never a 500.

Authlib copies ``redirect_uri`` and ``response_type`` into its error descriptions, and raises (a 500)
when a description holds a character RFC 6749 §5.2 forbids there (``"``, ``\\``, controls,
non-ASCII). Each known parameter is now held to its grammar (RFC 6749 Appendix A) as the request is
read, a repeated parameter is refused without naming an unknown name (RFC 6749 §3.1), and a JSON
body must be I-JSON (RFC 7493) nested at most 32 levels. Sent to a real ``ringfence serve``.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import httpx
import pytest

from tests.support.http import assert_no_internals
from tests.support.oauth import LOOPBACK_REDIRECT, DirectClient, EmbeddedServer, pkce_pair

pytestmark = pytest.mark.usefixtures("no_server_errors")

# RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
ERROR_DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")
MARKER = "zq"  # in every bad value: a refusal that contains it echoed the input

BAD_VALUES = {
    "backslash": f"{MARKER}\\x",
    "double quote": f'{MARKER}"x',
    "tab": f"{MARKER}\tx",
    "non-ASCII": f"{MARKER}caf\u00e9",
    "line separator": f"{MARKER}\u2028",
    "not UTF-8": f"{MARKER}\ufffd",  # what %FF decodes to
}
BAD_PARAMETERS = ("redirect_uri", "response_type")
REPEATED_NAMES = {
    "known name": "client_id",
    "name with quote and backslash": f'{MARKER}"\\',
    "name with tab": f"{MARKER}\t",
    "non-ASCII name": f"{MARKER}\u00e9",
}
FORM_ENDPOINTS = ("/token", "/revoke", "/introspect")


@pytest.fixture(scope="module")
def client(embedded: EmbeddedServer) -> DirectClient:
    """A real client, so that a value reaching Authlib would get as far as its redirect-URI check."""
    return DirectClient.register(embedded.issuer, embedded.mcp_url, client_name="Bad Input Client")


def base_parameters(endpoint: str, client: DirectClient) -> dict[str, str]:
    _, challenge = pkce_pair()
    if endpoint == "/authorize":
        return {"response_type": "code", "client_id": client.client_id, "redirect_uri": LOOPBACK_REDIRECT,
                "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"}
    if endpoint == "/token":
        return {"grant_type": "authorization_code", "code": "x", "client_id": client.client_id,
                "redirect_uri": LOOPBACK_REDIRECT, "code_verifier": "v" * 43}
    return {"token": "x", "client_id": client.client_id, "response_type": "code"}


def send(issuer: str, endpoint: str, pairs: list[tuple[str, str]]) -> httpx.Response:
    encoded = urlencode(pairs)
    if endpoint == "/authorize":
        return httpx.get(f"{issuer}/authorize?{encoded}", timeout=10)
    return httpx.post(f"{issuer}{endpoint}", content=encoded,
                      headers={"content-type": "application/x-www-form-urlencoded"}, timeout=10)


def assert_refused_without_echo(response: httpx.Response, endpoint: str) -> str:
    """A 4xx: the error page at /authorize, an RFC 6749 §5.2 JSON error elsewhere; nothing echoed."""
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    assert MARKER not in response.text and MARKER not in str(response.headers)
    assert_no_internals(response)
    if endpoint == "/authorize":
        assert response.headers["content-type"].startswith("text/html")
        assert "location" not in response.headers
        assert "<code>invalid_request</code>" in response.text
        return response.text
    body = response.json()
    assert body["error"] == "invalid_request", body
    assert ERROR_DESCRIPTION.fullmatch(body["error_description"]), body
    return body["error_description"]


@pytest.mark.parametrize("endpoint", ["/authorize", *FORM_ENDPOINTS])
@pytest.mark.parametrize("parameter", BAD_PARAMETERS)
@pytest.mark.parametrize("value", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_parameter_outside_its_grammar_gets_invalid_request_rfc6749_appendix_a(
        embedded: EmbeddedServer, client: DirectClient, endpoint: str, parameter: str, value: str) -> None:
    """RFC 6749 Appendix A: ``redirect_uri`` is a URI-reference, ``response_type`` letters, digits and
    ``_``; a value outside that is refused by the parameter's name, and never copied into the answer."""
    parameters = {**base_parameters(endpoint, client), parameter: value}
    response = send(embedded.issuer, endpoint, list(parameters.items()))
    described = assert_refused_without_echo(response, endpoint)
    assert f"The {parameter} parameter has characters it may not contain." in described


@pytest.mark.parametrize("endpoint", ["/authorize", *FORM_ENDPOINTS])
@pytest.mark.parametrize("name", REPEATED_NAMES.values(), ids=REPEATED_NAMES.keys())
def test_repeated_parameter_gets_invalid_request_rfc6749_3_1(
        embedded: EmbeddedServer, client: DirectClient, endpoint: str, name: str) -> None:
    """RFC 6749 §3.1: parameters MUST NOT be included more than once; only a known name is named."""
    pairs = [*base_parameters(endpoint, client).items(), (name, "one"), (name, "two")]
    described = assert_refused_without_echo(send(embedded.issuer, endpoint, pairs), endpoint)
    expected = "The client_id parameter is repeated." if name == "client_id" else "A parameter is repeated."
    assert expected in described


def nested_lists(levels: int) -> list:
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def registration(members: str) -> bytes:
    """A registration request with a valid redirect URI and ``members`` written as given."""
    return f'{{"redirect_uris": ["{LOOPBACK_REDIRECT}"], {members}}}'.encode()


REGISTRATION_BODIES = {
    "nested past the parser's limit": b"[" * 30_000 + b"]" * 30_000,
    "nested 33 levels": json.dumps({"redirect_uris": [LOOPBACK_REDIRECT], "x": nested_lists(32)}).encode(),
    "lone surrogate in client_name": registration('"client_name": "zq\\ud800"'),
    "repeated member name": registration('"client_name": "a", "client_name": "b"'),
    "NaN": registration('"client_name": NaN'),
    "not UTF-8": b'{"client_name": "zq\xff"}',
}


@pytest.mark.parametrize("body", REGISTRATION_BODIES.values(), ids=REGISTRATION_BODIES.keys())
def test_registration_body_that_is_not_i_json_gets_invalid_request_rfc7493(embedded: EmbeddedServer,
                                                                           body: bytes) -> None:
    """RFC 7493 (I-JSON): no unpaired surrogates (§2.1), unique names (§2.3); nesting bounded, so
    neither the parser nor anything after it recurses past Python's limit."""
    response = httpx.post(f"{embedded.issuer}/register", content=body,
                          headers={"content-type": "application/json"}, timeout=10)
    assert len(body) < 65_536  # under the body cap: the JSON itself is what is refused
    assert_refused_without_echo(response, "/register")
