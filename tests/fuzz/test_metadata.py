"""Fuzzing the metadata endpoints: no 5xx, no internals, no secret echoed.

RFC 9728 protected-resource metadata, RFC 8414 authorization-server metadata (and its OpenID
Connect alias), the signing keys (RFC 7517), ``/metrics``, and paths next to them that do not
exist: any verb, query, Host, Origin, Accept or conditional header.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.json_values import TEXT, weighted
from tests.fuzz.mcp_requests import HEADER_TEXT, authorization, transport_headers
from tests.fuzz.target import FuzzTarget
from tests.fuzz.wire import BATCH, Request, Wire, fuzz_settings

METADATA = "metadata"
PATHS = ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp",
         "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/jwks.json", "/metrics"]
NEAR_PATHS = ["/.well-known/oauth-protected-resource/mcp/", "/.well-known/oauth-protected-resource/other",
              "/.well-known/oauth-authorization-server/mcp", "/.well-known/", "/.well-known/../jwks.json",
              "/.WELL-KNOWN/oauth-authorization-server", "/%2e%2e/jwks.json", "/jwks.json/", "//jwks.json",
              "/metrics?name[]=x", "/.well-known/oauth-protected-resource%2Fmcp", "/mcp/../jwks.json"]
VERBS = st.sampled_from(["GET"] * 8 + ["HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
QUERIES = weighted((4, st.just("")), (1, st.sampled_from(["?resource=x", "?a=1&a=2", "?%ff", "?format=json"])),
                   (1, TEXT.map(lambda text: "?" + quote(text, safe="=&", errors="surrogatepass"))))
PATH = weighted((4, st.sampled_from(PATHS)), (1, st.sampled_from(NEAR_PATHS)),
                (1, TEXT.map(lambda text: "/.well-known/" + quote(text, safe="/", errors="surrogatepass"))))
CONDITIONAL = weighted((2, st.just([])),
                       (1, st.lists(st.tuples(st.sampled_from(["if-none-match", "if-modified-since", "range",
                                                               "accept-encoding", "accept-language"]), HEADER_TEXT),
                                    max_size=2)))


@pytest.fixture(scope="module")
def requests(target: FuzzTarget) -> st.SearchStrategy[Request]:
    return st.tuples(VERBS, PATH, QUERIES, transport_headers(target), authorization(target), CONDITIONAL).map(
        lambda t: Request(t[0], t[1] + t[2], [*t[3], *t[4], *t[5]], b"{}" if t[0] in ("POST", "PUT") else None))


@given(data=st.data())
@fuzz_settings(600)
def test_metadata_requests_get_no_5xx_internals_or_secrets(wire: Wire, requests: st.SearchStrategy[Request],
                                                           data: st.DataObject) -> None:
    """RFC 9728 §3 / RFC 8414 §3 metadata, the keys and /metrics, and paths beside them."""
    with wire.batch() as send:
        for _ in range(BATCH):
            send(METADATA, data.draw(requests, label="request"))
