"""Bearer token refusals at /mcp: status and every WWW-Authenticate parameter (RFC 6750 §3, MCP authorization).

JWT access tokens are verified against the issuer's JWKS; opaque ones through RFC 7662 introspection.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.forged import hs256_token, unsigned_token, with_header
from tests.support.http import challenge, tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.serve import MCP_ACCEPT, ServeProcess

SEARCH = ("search_contacts", {"query": "ann"})


def assert_invalid_token(response: httpx.Response, server: ServeProcess, *, says: str) -> None:
    """401 with ``error="invalid_token"``, a description naming the problem, and the metadata URL."""
    assert response.status_code == 401, response.text
    params = challenge(response)
    assert params["error"] == "invalid_token"
    assert says in params["error_description"].lower(), params["error_description"]
    assert params["resource_metadata"] == server.metadata_url
    assert set(params) <= {"error", "error_description", "scope", "resource_metadata"}
    assert params.get("scope", "contacts:read") == "contacts:read"


# No credentials ----------------------------------------------------------------------------


def test_no_token_on_a_protected_tool_gets_401_with_scope_and_no_error_code(contacts: ServeProcess) -> None:
    """RFC 6750 §3.1: no error code when no credentials were sent; MCP: ``scope`` and ``resource_metadata``."""
    response = contacts.call_tool(*SEARCH)
    assert response.status_code == 401
    assert challenge(response) == {"scope": "contacts:read", "resource_metadata": contacts.metadata_url}


def test_another_auth_scheme_is_answered_like_no_token(contacts: ServeProcess) -> None:
    """RFC 6750 §3: a request with Basic (or any non-Bearer) credentials gets the Bearer challenge."""
    response = contacts.call_tool(*SEARCH, headers={"authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 401
    assert challenge(response) == {"scope": "contacts:read", "resource_metadata": contacts.metadata_url}


def test_bearer_scheme_name_is_case_insensitive(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """RFC 9110 §11.1: the auth-scheme is case-insensitive; ``bearer`` is the same credential."""
    token = idp.token(contacts.mcp_url, scope="contacts:read")
    response = contacts.call_tool(*SEARCH, headers={"authorization": f"bEaReR {token}"})
    assert response.status_code == 200


# Invalid tokens: 401 invalid_token -----------------------------------------------------------


def test_malformed_jwt_gets_401_invalid_token(contacts: ServeProcess) -> None:
    """RFC 6750 §3.1 invalid_token: "malformed"."""
    assert_invalid_token(contacts.call_tool(*SEARCH, token="a.b.c"), contacts, says="malformed")


def test_signature_by_an_unpublished_key_with_a_published_kid_gets_401(contacts: ServeProcess,
                                                                       idp: TestIdentityProvider) -> None:
    """OAuth 2.1 §5.2 / RFC 9068 §4: the signature must verify with the issuer's published key."""
    token = idp.token(contacts.mcp_url, key=idp.unpublished, scope="contacts:read")
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="signature")


def test_token_carrying_its_own_key_in_the_header_is_not_trusted(contacts: ServeProcess,
                                                                 idp: TestIdentityProvider) -> None:
    """RFC 8725 §3.10 / RFC 9068 §4: keys come from the issuer's JWKS, never from a ``jwk`` header."""
    token = idp.token(contacts.mcp_url, key=idp.unpublished, scope="contacts:read",
                      header={"jwk": idp.unpublished.as_dict(private=False)})
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="signature")


def test_expired_token_gets_401_invalid_token(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """RFC 6750 §3.1 "expired"; RFC 9068 §4: ``exp`` is checked (60 s past, beyond the 30 s leeway)."""
    now = int(time.time())
    token = idp.token(contacts.mcp_url, iat=now - 700, exp=now - 60, scope="contacts:read")
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="expired")


def test_token_expired_within_the_clock_leeway_is_accepted(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """RFC 7519 §4.1.4 allows a small leeway for clock skew; ringfence's is 30 seconds."""
    token = idp.token(contacts.mcp_url, exp=int(time.time()) - 5, scope="contacts:read")
    assert contacts.call_tool(*SEARCH, token=token).status_code == 200


def test_not_yet_valid_token_gets_401_invalid_token(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """RFC 7519 §4.1.5: ``nbf`` two minutes ahead, beyond the 30 s leeway."""
    token = idp.token(contacts.mcp_url, nbf=int(time.time()) + 120, scope="contacts:read")
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="not valid yet")


def test_token_from_another_issuer_gets_401_invalid_token(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """OAuth 2.1 §5.2 / RFC 9068 §4: ``iss`` must be exactly the trusted issuer."""
    token = idp.token(contacts.mcp_url, iss="https://evil.example", scope="contacts:read")
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="issuer")


def test_issuer_with_an_added_trailing_slash_gets_401_invalid_token(contacts: ServeProcess,
                                                                    idp: TestIdentityProvider) -> None:
    """RFC 8414 §3.3 / RFC 9068 §4: the issuer is compared by exact string, not "close enough"."""
    token = idp.token(contacts.mcp_url, iss=idp.issuer + "/", scope="contacts:read")
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="issuer")


def test_token_for_another_audience_gets_401_invalid_token(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """RFC 8707 §2 / MCP: tokens issued for another resource MUST be rejected (no token passthrough)."""
    token = idp.token("https://other.example/mcp", scope="contacts:read")
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="not issued for this server")


def test_token_without_audience_gets_401_invalid_token(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """RFC 9068 §4: ``aud`` is required; a token without one is not for us."""
    token = idp.token(contacts.mcp_url, aud=None, scope="contacts:read")
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="not issued for this server")


def test_audience_list_containing_this_server_is_accepted(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """RFC 7519 §4.1.3: ``aud`` may be an array; it must contain this resource."""
    token = idp.token(["https://other.example/mcp", contacts.mcp_url], scope="contacts:read")
    assert contacts.call_tool(*SEARCH, token=token).status_code == 200


def test_token_without_subject_gets_401_invalid_token(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """RFC 9068 §2.2: ``sub`` is required; without it there is no user to act for."""
    token = idp.token(contacts.mcp_url, sub=None, scope="contacts:read")
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="sub")


def test_unsigned_alg_none_token_gets_401_invalid_token(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """RFC 8725 §3.1 / RFC 9068 §4: ``alg: none`` is never accepted."""
    token = unsigned_token(idp.claims(contacts.mcp_url, scope="contacts:read"))
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="algorithm")


def test_hs256_token_signed_with_a_shared_secret_gets_401_invalid_token(contacts: ServeProcess,
                                                                        idp: TestIdentityProvider) -> None:
    """RFC 8725 §3.1: only the issuer's asymmetric algorithms; no HMAC key confusion."""
    token = hs256_token(idp.claims(contacts.mcp_url, scope="contacts:read"), kid="es-1")
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="algorithm")


def test_header_alg_swapped_to_another_accepted_alg_gets_401_invalid_token(contacts: ServeProcess,
                                                                           idp: TestIdentityProvider) -> None:
    """RFC 8725 §3.1: the key decides the algorithm; an RS256 signature relabelled ES256 does not verify."""
    token = with_header(idp.token(contacts.mcp_url, alg="RS256", scope="contacts:read"), alg="ES256")
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="signature")


def test_unknown_kid_gets_401_invalid_token(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """RFC 7515 §4.1.4: a key id the issuer does not publish."""
    token = idp.token(contacts.mcp_url, header={"kid": "not-published"}, scope="contacts:read")
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="unknown key")


def test_unknown_kid_within_the_refresh_interval_does_not_refetch(contacts: ServeProcess,
                                                                  idp: TestIdentityProvider) -> None:
    """Forged kids cannot make the server hammer the issuer: within the 30 s refresh interval, no JWKS refetch."""
    assert contacts.call_tool(*SEARCH, token=idp.token(contacts.mcp_url, header={"kid": "forged-a"})).status_code == 401
    before = idp.jwks_fetches
    for n in range(5):
        token = idp.token(contacts.mcp_url, header={"kid": f"forged-b{n}"}, scope="contacts:read")
        assert contacts.call_tool(*SEARCH, token=token).status_code == 401
    assert idp.jwks_fetches == before


@pytest.mark.parametrize("typ", ["id_token+jwt", "JOSE", "dpop+jwt", "logout+jwt"])
def test_token_typed_as_something_other_than_an_access_token_gets_401(contacts: ServeProcess,
                                                                     idp: TestIdentityProvider, typ: str) -> None:
    """RFC 9068 §4 / RFC 8725 §3.11: ``typ`` prevents an ID token or other JWT being used as an access token."""
    token = idp.token(contacts.mcp_url, header={"typ": typ}, scope="contacts:read")
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="not an access token")


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "JWT"])
def test_access_token_typ_values_are_accepted(contacts: ServeProcess, idp: TestIdentityProvider, typ: str) -> None:
    """RFC 9068 §2.1 ``at+jwt``; plain ``JWT`` is what most identity providers still send."""
    token = idp.token(contacts.mcp_url, header={"typ": typ}, scope="contacts:read")
    assert contacts.call_tool(*SEARCH, token=token).status_code == 200


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_tokens_signed_with_each_default_algorithm_are_accepted(contacts: ServeProcess, idp: TestIdentityProvider,
                                                                alg: str) -> None:
    """The default allow-list: RS256 (most providers), ES256 and EdDSA (RFC 8037)."""
    token = idp.token(contacts.mcp_url, alg=alg, scope="contacts:read")
    result = tool_result(contacts.call_tool(*SEARCH, token=token))
    assert result["isError"] is False


def test_oversized_token_gets_401_invalid_token(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """A validly signed token over 8192 bytes is refused before any parsing (bounded work per request)."""
    token = idp.token(contacts.mcp_url, scope="contacts:read", padding="x" * 9000)
    assert len(token) > 8192
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="too large")


# Invalid tokens are refused on every request, not only protected tools ------------------------


def test_invalid_token_on_initialize_gets_401(contacts: ServeProcess) -> None:
    """MCP: authorization is checked on every HTTP request; a bad token is never ignored."""
    assert_invalid_token(contacts.initialize(token="a.b.c"), contacts, says="malformed")


def test_invalid_token_on_tools_list_gets_401(contacts: ServeProcess) -> None:
    """MCP: "Invalid or expired tokens MUST receive a HTTP 401 response", whatever the method."""
    assert_invalid_token(contacts.request("tools/list", token="a.b.c"), contacts, says="malformed")


def test_invalid_token_on_a_public_tool_gets_401(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """An expired token is refused even where no token is needed: the caller must learn it is bad."""
    now = int(time.time())
    token = idp.token(contacts.mcp_url, iat=now - 700, exp=now - 60)
    assert_invalid_token(contacts.call_tool("app_info", token=token), contacts, says="expired")


def test_valid_token_on_a_public_tool_works(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """A public tool serves a signed-in caller too."""
    result = tool_result(contacts.call_tool("app_info", token=idp.token(contacts.mcp_url)))
    assert result["isError"] is False
    assert result["structuredContent"]["name"] == "Contacts"


# Where and how the token is sent: 400 invalid_request ------------------------------------------


def test_token_in_the_query_string_gets_400_invalid_request(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """MCP: "Access tokens MUST NOT be included in the URI query string" (RFC 6750 §2.3 not supported)."""
    token = idp.token(contacts.mcp_url, scope="contacts:read")
    response = httpx.post(f"{contacts.mcp_url}?access_token={token}", headers={"accept": MCP_ACCEPT},
                          json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 400
    params = challenge(response)
    assert params["error"] == "invalid_request"
    assert params["error_description"]
    assert params["resource_metadata"] == contacts.metadata_url


def test_two_authorization_headers_get_400_invalid_request(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """RFC 6750 §3.1 invalid_request: more than one method of credentials; which one would count?"""
    reader, writer = (idp.token(contacts.mcp_url, scope=scope) for scope in ("contacts:read", "contacts:write"))
    response = httpx.post(contacts.mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=[
        ("accept", MCP_ACCEPT), ("authorization", f"Bearer {reader}"), ("authorization", f"Bearer {writer}"),
    ])
    assert response.status_code == 400
    params = challenge(response)
    assert params["error"] == "invalid_request"
    assert params["error_description"]
    assert params["resource_metadata"] == contacts.metadata_url


@pytest.mark.parametrize("raw", [b"Bearer t\xc3\xb6ken", b"Bearer tok\xffen", b"Bearer two words", b"Bearer a,b"])
def test_non_token68_bytes_in_the_header_get_400_or_401_never_5xx(contacts: ServeProcess, raw: bytes) -> None:
    """RFC 6750 §2.1: ``b64token`` syntax; anything else is a client error, never a crash."""
    response = httpx.post(contacts.mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                          headers=[(b"accept", MCP_ACCEPT.encode()), (b"authorization", raw)])
    assert response.status_code in (400, 401)
    assert challenge(response)["error"] in ("invalid_request", "invalid_token")


# Scopes: 403 insufficient_scope --------------------------------------------------------------


def test_token_lacking_the_scope_gets_403_with_granted_and_required_scopes(contacts: ServeProcess,
                                                                          idp: TestIdentityProvider) -> None:
    """MCP step-up: 403 ``insufficient_scope`` with ``scope`` = relevant granted + required (2025-11-25)."""
    token = idp.token(contacts.mcp_url, scope="contacts:read openid profile")
    response = contacts.call_tool("delete_contact", {"contact_id": 1}, token=token)
    assert response.status_code == 403
    params = challenge(response)
    assert params == {
        "error": "insufficient_scope",
        "error_description": params["error_description"],
        "scope": "contacts:read contacts:write",
        "resource_metadata": contacts.metadata_url,
    }
    assert "contacts:write" in params["error_description"]


def test_token_with_no_scopes_gets_403_naming_only_the_required_scope(contacts: ServeProcess,
                                                                      idp: TestIdentityProvider) -> None:
    """MCP: the challenge names what this operation needs; nothing was granted to keep."""
    response = contacts.call_tool(*SEARCH, token=idp.token(contacts.mcp_url, scope=""))
    assert response.status_code == 403
    assert challenge(response)["scope"] == "contacts:read"


def test_broader_scope_implies_the_narrower_one(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """MCP 2026-07-28: servers MUST honour scope hierarchies (contacts:write implies contacts:read)."""
    token = idp.token(contacts.mcp_url, scope="contacts:write")
    result = tool_result(contacts.call_tool(*SEARCH, token=token))
    assert result["isError"] is False


def test_scp_list_claim_is_read_as_scopes(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """Some providers send scopes as an ``scp`` array instead of RFC 9068 §2.2.3 ``scope``."""
    token = idp.token(contacts.mcp_url, scope=None, scp=["contacts:read"])
    assert contacts.call_tool(*SEARCH, token=token).status_code == 200


# Opaque tokens: RFC 7662 introspection ----------------------------------------------------------


def test_active_opaque_token_for_this_resource_works(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """RFC 7662 §2.2 ``active: true`` with ``aud`` = this resource: the call runs as the token's subject."""
    token = idp.opaque_token(contacts.mcp_url, sub=new_subject(), scope="contacts:write")
    added = tool_result(contacts.call_tool("add_contact", {"name": "Opaque Olga"}, token=token))
    assert added["isError"] is False
    found = tool_result(contacts.call_tool("search_contacts", {"query": "olga"}, token=token))
    assert [contact["name"] for contact in found["structuredContent"]["result"]] == ["Opaque Olga"]


def test_inactive_opaque_token_gets_401(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """RFC 7662 §2.2: ``active: false`` (revoked, expired, unknown) means no access."""
    token = idp.opaque_token(contacts.mcp_url, active=False, scope="contacts:read")
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="not active")


def test_token_unknown_to_the_issuer_gets_401(contacts: ServeProcess) -> None:
    """RFC 7662 §2.2: the issuer answers ``{"active": false}`` for tokens it never issued."""
    assert_invalid_token(contacts.call_tool(*SEARCH, token="never-issued-opaque-token"), contacts, says="not active")


def test_active_opaque_token_for_another_audience_gets_401(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """RFC 8707 §2 / RFC 7662 §4: active is not enough; the token must be meant for this resource."""
    token = idp.opaque_token("https://other.example/mcp", scope="contacts:read")
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="not issued for this server")


def test_active_opaque_token_from_another_issuer_gets_401(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """OAuth 2.1 §5.2: the introspection answer's ``iss`` must be the trusted issuer."""
    token = idp.opaque_token(contacts.mcp_url, iss="https://evil.example", scope="contacts:read")
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="issuer")


def test_active_but_expired_opaque_token_gets_401(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """Defence in depth: ``exp`` in the introspection answer is checked here too."""
    token = idp.opaque_token(contacts.mcp_url, exp=int(time.time()) - 120, scope="contacts:read")
    assert_invalid_token(contacts.call_tool(*SEARCH, token=token), contacts, says="expired")


def test_active_opaque_token_lacking_the_scope_gets_403(contacts: ServeProcess, idp: TestIdentityProvider) -> None:
    """Scopes from introspection are enforced like a JWT's: 403 ``insufficient_scope``."""
    token = idp.opaque_token(contacts.mcp_url, scope="contacts:read")
    response = contacts.call_tool("add_contact", {"name": "Nope"}, token=token)
    assert response.status_code == 403
    assert challenge(response)["scope"] == "contacts:read contacts:write"
