"""``private_key_jwt`` client authentication (RFC 7523 §2.2, §3) at the embedded authorization server.

Clients identified by a Client ID Metadata Document publish their public keys inline (``jwks``) or at
a ``jwks_uri``; documents and key sets are served over https by a local server whose CA ``ringfence
serve`` trusts (``SSL_CERT_FILE``, with ``--allow-loopback-client-metadata``). Each refusal must be
RFC 6749 §5.2 ``invalid_client`` with HTTP 401, nothing issued, and the authorization code (or refresh
token) left unused: the same one is redeemed afterwards with a good assertion.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

from tests.support.client_assertions import (
    ASSERTION_TYPE,
    ClientKey,
    assertion_form,
    hmac_signed,
    jwks,
    unsigned,
)
from tests.support.idp import free_port
from tests.support.instances import REDIS_URL, clear_rate_limits, instances, start_in_turn
from tests.support.oauth import (
    LOOPBACK_REDIRECT,
    Account,
    BrowserLikeUser,
    DirectClient,
    EmbeddedServer,
    add_user,
    basic_auth,
    jwt_claims,
    oauth_error,
    server_errors,
    start_embedded,
)
from tests.support.serve import CONTACTS_APP
from tests.support.tls import HttpsDocuments, TlsFiles, make_certificates

URI_CLIENT = "/keys-at-uri/client.json"
URI_KEYS = "/keys-at-uri/jwks.json"
INLINE_CLIENT = "/keys-inline/client.json"
PUBLIC_CLIENT = "/public/client.json"
UNREACHABLE_CLIENT = "/keys-unreachable/client.json"
ROTATING_CLIENT = "/keys-rotating/client.json"
ROTATING_KEYS = "/keys-rotating/jwks.json"
SAML_TYPE = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"


def document(client_id: str, **metadata: Any) -> dict[str, Any]:
    return {"client_id": client_id, "client_name": "Key Client", "redirect_uris": [LOOPBACK_REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "token_endpoint_auth_method": "private_key_jwt", **metadata}


class CachedHttpsDocuments(HttpsDocuments):
    """Documents served with ``Cache-Control: max-age=300``: the server may reuse what it fetched."""

    async def _answer(self, request: Request) -> Response:
        response = await super()._answer(request)
        response.headers["cache-control"] = "max-age=300"
        return response


@dataclass
class Keyed:
    tls: TlsFiles
    server: EmbeddedServer
    documents: HttpsDocuments
    cached: CachedHttpsDocuments
    keys: dict[str, ClientKey]  # by client document path
    user: BrowserLikeUser

    @property
    def token_endpoint(self) -> str:
        return f"{self.server.issuer}/token"

    def url(self, path: str) -> str:
        documents = self.cached if path == ROTATING_CLIENT else self.documents
        return documents.url(path)

    def client(self, path: str) -> DirectClient:
        method = "none" if path == PUBLIC_CLIENT else "private_key_jwt"
        return DirectClient(self.server.issuer, self.server.mcp_url,
                            {"client_id": self.url(path), "token_endpoint_auth_method": method})

    def assertion(self, path: str, **claims: Any) -> dict[str, str]:
        """A good assertion of the client at ``path`` (claims changed as given), as form parameters."""
        return assertion_form(self.keys[path].assertion(self.url(path), self.token_endpoint, **claims))


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    tls: TlsFiles = make_certificates(tmp_path_factory.mktemp("pkjwt-ca"))
    documents, cached = HttpsDocuments(tls).start(), CachedHttpsDocuments(tls).start()
    keys = {URI_CLIENT: ClientKey.ec(), INLINE_CLIENT: ClientKey.rsa(), PUBLIC_CLIENT: ClientKey.ec(),
            UNREACHABLE_CLIENT: ClientKey.ec(), ROTATING_CLIENT: ClientKey.ec()}
    docs = documents.documents
    docs[URI_CLIENT] = document(documents.url(URI_CLIENT), jwks_uri=documents.url(URI_KEYS))
    docs[URI_KEYS] = jwks(keys[URI_CLIENT])
    docs[INLINE_CLIENT] = document(documents.url(INLINE_CLIENT), jwks=jwks(keys[INLINE_CLIENT]))
    docs[PUBLIC_CLIENT] = document(documents.url(PUBLIC_CLIENT), token_endpoint_auth_method="none")
    docs[UNREACHABLE_CLIENT] = document(documents.url(UNREACHABLE_CLIENT),
                                        jwks_uri=f"https://localhost:{free_port()}/jwks.json")  # nobody listens
    cached.documents[ROTATING_CLIENT] = document(cached.url(ROTATING_CLIENT), jwks_uri=cached.url(ROTATING_KEYS))
    cached.documents[ROTATING_KEYS] = jwks(keys[ROTATING_CLIENT])
    server = start_embedded(tmp_path_factory.mktemp("pkjwt"), "--allow-loopback-client-metadata",
                            env={"SSL_CERT_FILE": str(tls.ca)})
    user = BrowserLikeUser(server.issuer, server.account)
    yield Keyed(tls, server, documents, cached, keys, user)
    user.close()
    server.stop_and_check()  # no 5xx and no traceback, whatever the tests sent
    documents.stop()
    cached.stop()


@pytest.fixture(params=[URI_CLIENT, INLINE_CLIENT], ids=["jwks_uri", "jwks"])
def path(request: pytest.FixtureRequest) -> str:
    return request.param


def tokens(keyed: Keyed, path: str) -> dict[str, Any]:
    client = keyed.client(path)
    code, request = client.code(keyed.user)
    response = client.redeem(code, request.verifier, **keyed.assertion(path))
    assert response.status_code == 200, response.text
    return response.json()


def refused(response: httpx.Response) -> str:
    """RFC 6749 §5.2: ``invalid_client`` with 401, no token in it; the description, for the test to read."""
    body = oauth_error(response, 401, "invalid_client")
    assert "access_token" not in body and "refresh_token" not in body
    return body.get("error_description", "")


# The flow -----------------------------------------------------------------------------------------


def test_client_publishing_its_keys_gets_tokens_with_a_signed_assertion(keyed: Keyed, path: str) -> None:
    """RFC 7523 §2.2: the code is redeemed with client_assertion_type jwt-bearer and a JWT signed with a
    key the client publishes (ES256 at a jwks_uri, PS256 inline); the tokens are the client's."""
    issued = tokens(keyed, path)
    assert issued["token_type"] == "Bearer" and issued["refresh_token"]
    assert jwt_claims(issued["access_token"])["client_id"] == keyed.url(path)


def test_refresh_grant_authenticates_the_client_with_an_assertion(keyed: Keyed, path: str) -> None:
    """RFC 6749 §6: a confidential client authenticates to refresh; without an assertion it is refused
    (401) and the refresh token stays usable."""
    refresh_token = tokens(keyed, path)["refresh_token"]
    client = keyed.client(path)
    refused(client.refresh(refresh_token))
    refreshed = client.refresh(refresh_token, **keyed.assertion(path))
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] != refresh_token  # OAuth 2.1 §4.3.1: rotated


@pytest.mark.parametrize("audience", ["issuer", "token endpoint", "list"])
def test_audience_may_be_the_issuer_or_the_token_endpoint(keyed: Keyed, audience: str) -> None:
    """RFC 7523 §3 item 3: aud identifies this server, by its issuer identifier or its token endpoint URL
    (alone, or among other values)."""
    aud = {"issuer": keyed.server.issuer, "token endpoint": keyed.token_endpoint,
           "list": ["https://elsewhere.example", keyed.server.issuer]}[audience]
    client = keyed.client(URI_CLIENT)
    code, request = client.code(keyed.user)
    response = client.redeem(code, request.verifier, **keyed.assertion(URI_CLIENT, aud=aud))
    assert response.status_code == 200, response.text


def test_assertion_alone_identifies_the_client(keyed: Keyed) -> None:
    """RFC 7521 §4.2: client_id is optional with an assertion; its sub names the client."""
    client = keyed.client(URI_CLIENT)
    code, request = client.code(keyed.user)
    response = client.redeem(code, request.verifier, client_id=None, **keyed.assertion(URI_CLIENT))
    assert response.status_code == 200, response.text


def test_revocation_authenticates_the_client_with_an_assertion(keyed: Keyed) -> None:
    """RFC 7009 §2.1: the client authenticates at the revocation endpoint with its assertion; the
    revoked refresh token no longer works."""
    refresh_token = tokens(keyed, URI_CLIENT)["refresh_token"]
    revoked = httpx.post(f"{keyed.server.issuer}/revoke", timeout=10,
                         data={"token": refresh_token, **keyed.assertion(URI_CLIENT)})
    assert revoked.status_code == 200, revoked.text
    after = keyed.client(URI_CLIENT).refresh(refresh_token, **keyed.assertion(URI_CLIENT))
    oauth_error(after, 400, "invalid_grant")


def test_introspection_authenticates_the_client_with_an_assertion(keyed: Keyed) -> None:
    """RFC 7662 §2.1: the introspection endpoint requires client authentication; an assertion is one.
    The client learns about its own token (active); without an assertion it is refused (401)."""
    access_token = tokens(keyed, URI_CLIENT)["access_token"]
    endpoint = f"{keyed.server.issuer}/introspect"
    answer = httpx.post(endpoint, timeout=10, data={"token": access_token, **keyed.assertion(URI_CLIENT)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["active"] is True and answer.json()["client_id"] == keyed.url(URI_CLIENT)
    refused(httpx.post(endpoint, timeout=10, data={"token": access_token, "client_id": keyed.url(URI_CLIENT)}))


# Refusals: 401 invalid_client, nothing issued, the code still unused -------------------------------

Forge = Callable[[Keyed], dict[str, str]]


def claims(keyed: Keyed, **changes: Any) -> dict[str, Any]:
    return keyed.keys[URI_CLIENT].claims(keyed.url(URI_CLIENT), keyed.token_endpoint, **changes)


def signed_with(key: ClientKey) -> Forge:
    return lambda keyed: assertion_form(key.assertion(keyed.url(URI_CLIENT), keyed.token_endpoint))


def changed(**claim_changes: Any) -> Forge:
    def forge(keyed: Keyed) -> dict[str, str]:
        now = int(time.time())
        values = {name: value(now) if callable(value) else value for name, value in claim_changes.items()}
        return keyed.assertion(URI_CLIENT, **values)
    return forge


def key_confusion(secret: Callable[[ClientKey], bytes]) -> Forge:
    def forge(keyed: Keyed) -> dict[str, str]:
        key = keyed.keys[URI_CLIENT]
        return assertion_form(hmac_signed(claims(keyed), secret(key), key.kid))
    return forge


def same_kid_other_key(keyed: Keyed) -> dict[str, str]:
    impostor = ClientKey.ec(kid=keyed.keys[URI_CLIENT].kid)  # names the published key, signs with another
    return signed_with(impostor)(keyed)


SIGNATURE, UNPUBLISHED, ASYMMETRIC = "signature is not valid", "key the client has not published", "asymmetric"
ISS_SUB, AUD, TIMES = "iss and sub must be the client_id", "aud must be this server's", "must have exp and iat"

# What is forged, and the refusal it must get (each for its own reason, never by accident).
REFUSALS: dict[str, tuple[Forge, str]] = {
    "bad signature": (same_kid_other_key, SIGNATURE),
    "key not in the set": (signed_with(ClientKey.ec()), UNPUBLISHED),
    "alg none": (lambda keyed: assertion_form(unsigned(claims(keyed))), ASYMMETRIC),
    "HS256 with the public key PEM": (key_confusion(lambda key: key.public_pem()), ASYMMETRIC),
    "HS256 with the public JWK": (key_confusion(lambda key: json.dumps(key.public_jwk()).encode()), ASYMMETRIC),
    "wrong iss": (changed(iss="https://attacker.example/client.json"), ISS_SUB),
    "wrong sub": (changed(sub="https://attacker.example/client.json"), ISS_SUB),
    "wrong aud": (changed(aud="https://other-server.example/token"), AUD),
    "aud is the resource": (lambda keyed: keyed.assertion(URI_CLIENT, aud=keyed.server.mcp_url), AUD),
    "expired": (changed(iat=lambda now: now - 400, exp=lambda now: now - 100), "has expired"),
    "lifetime too long": (changed(exp=lambda now: now + 3600), "must expire within 300 seconds"),
    "issued in the future": (changed(iat=lambda now: now + 600, exp=lambda now: now + 660), "issued in the future"),
    "not valid yet": (changed(nbf=lambda now: now + 600), "not valid yet"),
    "missing exp": (changed(exp=None), TIMES),
    "missing iat": (changed(iat=None), TIMES),
    "exp not a number": (changed(exp="tomorrow"), TIMES),
    "missing jti": (changed(jti=None), "must have a jti"),
    "wrong assertion type": (lambda keyed: {**keyed.assertion(URI_CLIENT), "client_assertion_type": SAML_TYPE},
                             "client_assertion_type must be"),
    "type without assertion": (lambda keyed: {"client_assertion_type": ASSERTION_TYPE}, "missing"),
    "not a JWT": (lambda keyed: {"client_assertion_type": ASSERTION_TYPE, "client_assertion": "not-a-jwt"},
                  "not a signed JWT"),
    "client_id of another client": (lambda keyed: {**keyed.assertion(URI_CLIENT),
                                                   "client_id": keyed.url(INLINE_CLIENT)}, UNPUBLISHED),
    "assertion and a secret": (lambda keyed: {**keyed.assertion(URI_CLIENT), "client_secret": "guess"},
                               "one client authentication method"),
}


@pytest.mark.parametrize(("forge", "reason"), REFUSALS.values(), ids=REFUSALS.keys())
def test_refused_assertion_gets_401_invalid_client_and_leaves_the_code_unused(keyed: Keyed, forge: Forge,
                                                                              reason: str) -> None:
    """RFC 7523 §3 (signature by a published key; iss = sub = client id; aud this server; exp, iat, nbf,
    jti), RFC 7521 §4.2 (assertion type), no symmetric or unsigned JWTs: each is RFC 6749 §5.2
    invalid_client, 401; the code is still good for a correct request afterwards."""
    client = keyed.client(URI_CLIENT)
    code, request = client.code(keyed.user)
    assert reason in refused(client.redeem(code, request.verifier, **forge(keyed)))
    response = client.redeem(code, request.verifier, **keyed.assertion(URI_CLIENT))
    assert response.status_code == 200, response.text


def test_replayed_assertion_is_refused(keyed: Keyed) -> None:
    """RFC 7523 §3 item 7: a jti is used once; the same assertion again is refused (and the second code
    stays unused)."""
    client = keyed.client(URI_CLIENT)
    form = keyed.assertion(URI_CLIENT)
    first_code, first = client.code(keyed.user)
    assert client.redeem(first_code, first.verifier, **form).status_code == 200
    code, request = client.code(keyed.user)
    assert "already used" in refused(client.redeem(code, request.verifier, **form))
    assert client.redeem(code, request.verifier, **keyed.assertion(URI_CLIENT)).status_code == 200


def test_key_client_cannot_authenticate_without_an_assertion(keyed: Keyed, path: str) -> None:
    """RFC 6749 §3.2.1: a confidential client authenticates; ``none`` is not its method (RFC 7591 §2)."""
    client = keyed.client(path)
    code, request = client.code(keyed.user)
    assert "cannot authenticate" in refused(client.redeem(code, request.verifier))
    assert client.redeem(code, request.verifier, **keyed.assertion(path)).status_code == 200


def test_key_client_cannot_authenticate_with_a_secret(keyed: Keyed) -> None:
    """A metadata-document client has no secret (CIMD §4.1); one sent in the body or with HTTP Basic is
    refused with 401 (RFC 6749 §5.2: MUST with Basic)."""
    client = keyed.client(URI_CLIENT)
    code, request = client.code(keyed.user)
    assert "cannot authenticate" in refused(client.redeem(code, request.verifier, client_secret="a-guessed-secret"))
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": request.verifier,
            "redirect_uri": LOOPBACK_REDIRECT, "resource": keyed.server.mcp_url}
    refused(httpx.post(keyed.token_endpoint, data=form, headers=basic_auth(client.client_id, "guess"), timeout=10))
    assert client.redeem(code, request.verifier, **keyed.assertion(URI_CLIENT)).status_code == 200


def test_public_client_sending_an_assertion_is_refused_and_none_still_works(keyed: Keyed) -> None:
    """A client registered for ``none`` that sends an assertion is refused, not silently treated as public
    (RFC 6749 §2.3: one method, the registered one); without it, ``none`` works as before."""
    client = keyed.client(PUBLIC_CLIENT)
    code, request = client.code(keyed.user)
    assert "not registered for private_key_jwt" in refused(
        client.redeem(code, request.verifier, **keyed.assertion(PUBLIC_CLIENT)))
    assert client.redeem(code, request.verifier).status_code == 200


def test_unreachable_jwks_uri_fails_closed_with_401(keyed: Keyed) -> None:
    """Keys that cannot be fetched authenticate nobody: 401 invalid_client, never a 5xx."""
    client = keyed.client(UNREACHABLE_CLIENT)
    code, request = client.code(keyed.user)
    assert "keys could not be fetched" in refused(
        client.redeem(code, request.verifier, **keyed.assertion(UNREACHABLE_CLIENT)))


def test_rotated_key_is_found_by_one_fresh_fetch_and_unknown_kids_are_rate_limited(keyed: Keyed) -> None:
    """A key set cached by its HTTP headers is fetched afresh once when an assertion names a key it does
    not have (the client rotated its keys); another unknown kid soon after makes no fetch and is refused."""
    client, fetches = keyed.client(ROTATING_CLIENT), keyed.cached.fetches
    code, request = client.code(keyed.user)
    refresh_token = client.redeem(code, request.verifier, **keyed.assertion(ROTATING_CLIENT)).json()["refresh_token"]
    assert fetches.count(ROTATING_KEYS) == 1
    keyed.keys[ROTATING_CLIENT] = ClientKey.ec()
    keyed.cached.documents[ROTATING_KEYS] = jwks(keyed.keys[ROTATING_CLIENT])
    response = client.refresh(refresh_token, **keyed.assertion(ROTATING_CLIENT))
    assert response.status_code == 200, response.text
    assert fetches.count(ROTATING_KEYS) == 2
    stranger = ClientKey.ec().assertion(keyed.url(ROTATING_CLIENT), keyed.token_endpoint)
    assert UNPUBLISHED in refused(client.refresh(response.json()["refresh_token"], **assertion_form(stranger)))
    assert fetches.count(ROTATING_KEYS) == 2


def test_assertion_is_refused_with_503_when_used_ids_cannot_be_recorded(
        keyed: Keyed, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Fail closed: with Redis (where used jti values are kept) unreachable, a valid assertion is not
    accepted unrecorded: 503 temporarily_unavailable with Retry-After, before the code is even looked at
    (otherwise this made-up code would get 400 invalid_grant)."""
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    server = start_embedded(tmp_path_factory.mktemp("pkjwt-no-redis"), "--allow-loopback-client-metadata",
                            "--redis-url", unreachable, env={"SSL_CERT_FILE": str(keyed.tls.ca)})
    try:
        client_id = keyed.url(URI_CLIENT)
        assertion = keyed.keys[URI_CLIENT].assertion(client_id, f"{server.issuer}/token")
        response = httpx.post(f"{server.issuer}/token", timeout=10, data={
            "grant_type": "authorization_code", "code": "made-up-code", "code_verifier": "v" * 43,
            "redirect_uri": LOOPBACK_REDIRECT, "client_id": client_id, **assertion_form(assertion)})
    finally:
        server.stop()
    oauth_error(response, 503, "temporarily_unavailable")
    assert response.headers["retry-after"] == "1"


# Dynamic registration (RFC 7591) -------------------------------------------------------------------


def test_registered_client_with_keys_gets_tokens_with_an_assertion(keyed: Keyed) -> None:
    """RFC 7591 §2: a client may register private_key_jwt with its jwks; it gets no secret, and
    authenticates with assertions signed by that key."""
    key = ClientKey.ec()
    client = DirectClient.register(keyed.server.issuer, keyed.server.mcp_url, local_address="127.0.0.9",
                                   token_endpoint_auth_method="private_key_jwt", jwks=jwks(key))
    assert "client_secret" not in client.registration
    code, request = client.code(keyed.user)
    refused(client.redeem(code, request.verifier))
    form = assertion_form(key.assertion(client.client_id, keyed.token_endpoint))
    assert client.redeem(code, request.verifier, **form).status_code == 200


# Several instances ---------------------------------------------------------------------------------


@dataclass
class Pair:
    documents: HttpsDocuments
    key: ClientKey
    public_url: str
    instance_urls: list[str]
    account: Account

    @property
    def client_id(self) -> str:
        return self.documents.url(URI_CLIENT)


@pytest.fixture(scope="module")
def pair(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Two instances behind one public URL (the issuer), sharing PostgreSQL and Redis."""
    tmp = tmp_path_factory.mktemp("pkjwt-pair")
    tls = make_certificates(tmp)
    documents = HttpsDocuments(tls).start()
    key = ClientKey.ec()
    documents.documents[URI_CLIENT] = document(documents.url(URI_CLIENT), jwks_uri=documents.url(URI_KEYS))
    documents.documents[URI_KEYS] = jwks(key)
    (tmp / "logs").mkdir()
    account = add_user(tmp / "data", "kim", "two-instances-password", "--database-url", postgres_url)
    balancer, servers = instances(CONTACTS_APP, 2, tmp / "data", "--database-url", postgres_url, "--redis-url",
                                  REDIS_URL, "--allow-loopback-client-metadata", env={"SSL_CERT_FILE": str(tls.ca)})
    clear_rate_limits()
    balancer.start()
    try:
        start_in_turn(tmp / "logs", servers)
        yield Pair(documents, key, f"http://{balancer.address}", [server.base_url for server in servers], account)
    finally:
        for server in servers:
            server.stop()
        balancer.stop()
        documents.stop()
    errors = [line for server in servers for line in server_errors(server.logs())]
    assert errors == [], "\n".join(errors)


def test_assertion_used_at_one_instance_is_refused_at_the_other(pair: Pair) -> None:
    """RFC 7523 §3 item 7, across instances sharing Redis: the jti is single-use for the deployment; the
    refresh token the replay came with is not spent, and a fresh assertion uses it at the second instance."""
    user = BrowserLikeUser(pair.public_url, pair.account)
    try:
        first = DirectClient(pair.instance_urls[0], pair.public_url + "/mcp",
                             {"client_id": pair.client_id, "token_endpoint_auth_method": "private_key_jwt"})
        code, request = DirectClient(pair.public_url, first.resource, first.registration).code(user)
    finally:
        user.close()
    token_endpoint = pair.public_url + "/token"  # the issuer's: what both instances answer for
    form = assertion_form(pair.key.assertion(pair.client_id, token_endpoint))
    issued = first.redeem(code, request.verifier, **form)
    assert issued.status_code == 200, issued.text
    second = DirectClient(pair.instance_urls[1], first.resource, first.registration)
    refresh_token = issued.json()["refresh_token"]
    assert "already used" in refused(second.refresh(refresh_token, **form))
    fresh = assertion_form(pair.key.assertion(pair.client_id, token_endpoint))
    assert second.refresh(refresh_token, **fresh).status_code == 200
