"""Authlib's authorization server, configured for MCP and with its unsafe defaults overridden.

What ringfence changes (see ../shared/reference/python-libraries.md §3):
- PKCE is required and ``S256`` only; verifiers are compared in constant time (OAuth 2.1 §4.1.1).
- Codes are single use (atomically), live 60 s, and are bound to client, redirect URI, PKCE
  challenge, user and RFC 8707 resource; a reused code revokes what it issued.
- Access tokens are RFC 9068 JWTs with ``aud`` = the resource (not the client id), 15 minutes,
  naming their grant (``sid``): revoking the grant ends them within a second (live_grants.py).
- Refresh tokens rotate on every use; a reused one revokes its whole family (OAuth 2.1 §4.3.1).
- Requested scopes are narrowed to what the client may have, never refused.
- Clients authenticate with the method they registered, and only with it: ``none`` (public),
  ``client_secret_basic``/``_post`` (registered confidential clients) or ``private_key_jwt``
  (RFC 7523, :mod:`ringfence.authserver.client_assertion`), checked on the event loop before Authlib runs.

Authlib's server is synchronous: it runs in a worker thread, and every storage call hops back to
the event loop with ``anyio.from_thread.run``. A client metadata document is fetched before that,
on the event loop (:meth:`McpAuthorizationServer.respond`), so no worker thread waits on the network.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from base64 import urlsafe_b64encode
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import anyio.from_thread
import anyio.to_thread
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint
from authlib.oauth2.rfc7591.errors import InvalidClientMetadataError, InvalidRedirectURIError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from authlib.oauth2.rfc9207 import IssuerParameter
from joserfc.jwk import KeySet

from ringfence.authserver.cimd import ClientMetadataBusy, ClientMetadataError, is_web_url
from ringfence.authserver.client_assertion import (
    AssertionRefused,
    ClientAssertionVerifier,
    carries_assertion,
    claimed_client_id,
)
from ringfence.authserver.client_keys import ClientKeysBusy, ClientKeysUnavailable
from ringfence.authserver.client_name import client_name_problem
from ringfence.authserver.clients import ClientResolver, OAuthClient, RedirectPolicy
from ringfence.authserver.keys import KeyRing
from ringfence.authserver.live_grants import GRANT_CLAIM, LiveGrants, LiveGrantVerifier
from ringfence.authserver.models import AuthorizationCode, RefreshToken, RegisteredClient
from ringfence.authserver.public_keys import SIGNING_ALGORITHMS, KeySetRefused, public_key_set
from ringfence.authserver.scopes import ScopePolicy
from ringfence.authserver.store import AuthStore, now, secret_hash
from ringfence.ops.ratelimit import RateLimitUnavailable
from ringfence.refusals import InvalidToken
from ringfence.resource.tokens import JwtVerifier, TokenCache, TokenVerifier, VerifiedToken

ACCESS_TOKEN_SECONDS = 15 * 60
REFRESH_TOKEN_SECONDS = 30 * 24 * 3600
CODE_SECONDS = 60
# Tried in this order (Authlib): private_key_jwt first, so that a request carrying an assertion is
# judged by it alone, whichever method its client registered (RFC 6749 §2.3: one method per request).
CLIENT_AUTH_METHODS = ["private_key_jwt", "none", "client_secret_basic", "client_secret_post"]
CONFIDENTIAL_AUTH_METHODS = ["private_key_jwt", "client_secret_basic", "client_secret_post"]
ASSERTION_SIGNING_ALGORITHMS = list(SIGNING_ALGORITHMS)


REDIRECT_POLICY = "Redirect URIs must be https URLs the operator allows, or loopback (MCP authorization)."


# The metadata-document clients of the request being answered, fetched on the event loop before
# Authlib runs (a client, ``None`` for no such document, or why the document was refused).
_DOCUMENT_CLIENTS: ContextVar[Mapping[str, OAuthClient | ClientMetadataError | None]] = ContextVar(
    "ringfence_document_clients", default=MappingProxyType({}))
# The verdict on the request's client assertion, reached on the event loop before Authlib runs: the
# client it authenticates, or the refusal Authlib raises when it tries ``private_key_jwt``.
_ASSERTED_CLIENT: ContextVar[OAuthClient | InvalidClientError | None] = ContextVar(
    "ringfence_asserted_client", default=None)


class InvalidTargetError(OAuth2Error):
    """RFC 8707 §2: the requested resource is invalid, unknown, or differs from the one authorized."""

    error = "invalid_target"


class TemporarilyUnavailableError(OAuth2Error):
    """RFC 6749 §4.1.2.1: the server cannot handle the request now (503); the client may retry shortly."""

    error = "temporarily_unavailable"
    status_code = 503

    def get_headers(self) -> list[tuple[str, str]]:
        return [*super().get_headers(), ("Retry-After", "1")]


@dataclass(frozen=True)
class Grantee:
    """The resource owner within one grant: who, for which resource, in which refresh family."""

    user_id: int
    subject: str
    resource: str
    family_id: str

    def get_user_id(self) -> str:
        return self.subject


@dataclass(frozen=True)
class StoredCode:
    """Authlib's view of a redeemed authorization code."""

    record: AuthorizationCode

    @property
    def code_challenge(self) -> str:
        return self.record.code_challenge

    @property
    def code_challenge_method(self) -> str:
        return self.record.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.record.redirect_uri

    def get_scope(self) -> str:
        return self.record.scope


@dataclass(frozen=True)
class StoredRefreshToken:
    """Authlib's view of a refresh token (``TokenMixin``)."""

    record: RefreshToken

    def check_client(self, client: OAuthClient) -> bool:
        return client.client_id == self.record.client_id

    def get_scope(self) -> str:
        return self.record.scope

    def get_expires_in(self) -> int:
        return max(0, self.record.expires_at - now())

    def is_expired(self) -> bool:
        return self.record.expires_at < now()

    def is_revoked(self) -> bool:
        return self.record.revoked_at is not None or self.record.used_at is not None


@dataclass(frozen=True)
class VerifiedAccessToken:
    """Authlib's view of one of our JWT access tokens, already verified (its grant live)."""

    token: VerifiedToken
    audience: str

    def check_client(self, client: OAuthClient) -> bool:
        return client.client_id == self.token.client_id

    def is_expired(self) -> bool:
        return (self.token.expires_at or 0) < now()

    def is_revoked(self) -> bool:
        return False


def s256_challenge(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL(SHA256(verifier)), unpadded."""
    return urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _s256_matches(verifier: str, challenge: str) -> bool:
    return hmac.compare_digest(s256_challenge(verifier), challenge)


class S256Required(CodeChallenge):
    """RFC 7636 with OAuth 2.1's rules: a challenge is required, ``S256`` is the only method."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": _s256_matches}

    def validate_code_challenge(self, grant, redirect_uri):  # type: ignore[no-untyped-def]
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256.")
        if data.get("code_challenge_method") != "S256":
            # RFC 7636 §4.3: an absent method means "plain", which OAuth 2.1 servers refuse.
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
        super().validate_code_challenge(grant, redirect_uri)


class ResourceIndicator:
    """RFC 8707: the authorization names one resource this server issues for; the token request agrees."""

    def __init__(self, resources: frozenset[str], default: str | None) -> None:
        self.resources = resources
        self.default = default

    def __call__(self, grant: AuthorizationCodeGrant) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.check_authorization)
        grant.register_hook("after_validate_token_request", self.check_token)

    def check_authorization(self, grant, _result) -> None:  # type: ignore[no-untyped-def]
        values = grant.request.payload.datalist.get("resource", [])
        resource = values[0] if values else self.default
        if len(values) > 1 or resource not in self.resources:
            raise InvalidTargetError("The resource is not one this server issues tokens for.")
        grant.request.resource = resource

    def check_token(self, grant, _result) -> None:  # type: ignore[no-untyped-def]
        check_same_resource(grant.request.form.get("resource"), grant.request.authorization_code.record.resource)


def check_same_resource(requested: str | None, authorized: str) -> None:
    # RFC 8707 §2: a token request may narrow to, never change, the authorized resource.
    if requested is not None and requested != authorized:
        raise InvalidTargetError("The resource differs from the one that was authorized.")


def _run(fn, *args):  # type: ignore[no-untyped-def]
    """Run an async storage call from Authlib's worker thread on the event loop."""
    return anyio.from_thread.run(fn, *args)


def authenticate_private_key_jwt(query_client, request) -> OAuthClient | None:  # type: ignore[no-untyped-def]
    """Authlib's ``private_key_jwt`` method: the verdict :meth:`McpAuthorizationServer.respond` reached
    on the request's assertion; ``None`` (the next method's turn) for a request without one."""
    if not carries_assertion(request.form):
        return None
    verdict = _ASSERTED_CLIENT.get()
    if verdict is None:  # not checked (never through ``respond``): refused, never let through
        raise InvalidClientError(status_code=401, description="The client_assertion was not checked.")
    if isinstance(verdict, InvalidClientError):
        raise verdict
    return verdict


class CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    server: McpAuthorizationServer

    def save_authorization_code(self, code: str, request) -> None:  # type: ignore[no-untyped-def]
        data = request.payload.data
        record = AuthorizationCode(
            code_hash=secret_hash(code),
            client_id=request.client.client_id,
            user_id=request.user.id,
            redirect_uri=request.payload.redirect_uri or "",
            scope=request.scope or "",
            resource=request.resource,
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
            family_id=secrets.token_hex(16),
            expires_at=now() + CODE_SECONDS,
        )
        _run(self.server.store.add_code, record)

    def query_authorization_code(self, code: str, client: OAuthClient) -> StoredCode | None:
        redemption = _run(self.server.store.redeem_code, secret_hash(code), client.client_id)
        return StoredCode(redemption.record) if redemption.record is not None else None

    def delete_authorization_code(self, authorization_code: StoredCode) -> None:
        """Nothing to do: redemption already marked the code used."""

    def authenticate_user(self, authorization_code: StoredCode) -> Grantee | None:
        record = authorization_code.record
        return self.server.grantee(record.user_id, record.resource, record.family_id)


class RotatingRefreshGrant(RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # OAuth 2.1 §4.3.1: rotate refresh tokens of public clients
    server: McpAuthorizationServer

    def validate_token_request(self) -> None:
        super().validate_token_request()
        check_same_resource(self.request.form.get("resource"), self.request.refresh_token.record.resource)

    def authenticate_refresh_token(self, refresh_token: str) -> StoredRefreshToken | None:
        token_hash = secret_hash(refresh_token)
        requested = self.request.payload.scope
        if requested:  # RFC 6749 §6: no scope beyond the grant; refused before redemption uses the token up
            stored = _run(self.server.store.refresh_token, token_hash)
            if stored is not None and not set(requested.split()) <= set(stored.scope.split()):
                raise InvalidScopeError()
        redemption = _run(self.server.store.redeem_refresh_token, token_hash)
        return StoredRefreshToken(redemption.record) if redemption.record is not None else None

    def authenticate_user(self, refresh_token: StoredRefreshToken) -> Grantee | None:
        record = refresh_token.record
        return self.server.grantee(record.user_id, record.resource, record.family_id)

    def revoke_old_credential(self, refresh_token: StoredRefreshToken) -> None:
        """Nothing to do: redemption already marked the old token used."""


class AccessTokenGenerator(JWTBearerTokenGenerator):
    """RFC 9068 access tokens signed with the key ring's active ES256 key."""

    def __init__(self, issuer: str, keys: KeyRing) -> None:
        super().__init__(
            issuer,
            alg="ES256",
            refresh_token_generator=lambda **_: secrets.token_urlsafe(32),
            expires_generator=lambda _client, _grant_type: ACCESS_TOKEN_SECONDS,
        )
        self.keys = keys

    def get_jwks(self) -> KeySet:
        return KeySet([self.keys.active.key])  # a key set makes joserfc write the kid header

    def get_audiences(self, client, user: Grantee, scope):  # type: ignore[no-untyped-def]
        return user.resource  # RFC 8707 §2 / MCP: aud is the resource, never the client id

    def get_extra_claims(self, client, grant_type, user: Grantee, scope) -> dict[str, str]:  # type: ignore[no-untyped-def]
        return {GRANT_CLAIM: user.family_id}  # the grant whose revocation ends this token


def access_token_verifier(issuer: str, resource: str, keys: KeyRing, grants: LiveGrants, *,
                          leeway: int) -> TokenVerifier:
    """This server's access tokens for ``resource``: checked against the key ring (no HTTP),
    remembered until they expire, and refused within a second of their grant's revocation."""
    jwt = JwtVerifier(issuer=issuer, audience=resource, algorithms=("ES256",), keys=KeyRingSource(keys),
                      leeway=leeway, grant_claim=GRANT_CLAIM, cache=TokenCache())
    return LiveGrantVerifier(jwt, grants)


class McpAuthorizationServer(AuthorizationServer):
    """The embedded server's Authlib core; HTTP adaptation lives in :mod:`ringfence.authserver.routes`."""

    def __init__(
        self,
        *,
        issuer: str,
        store: AuthStore,
        clients: ClientResolver,
        keys: KeyRing,
        resources: frozenset[str],
        scopes: ScopePolicy,
        redirects: RedirectPolicy,
        grants: LiveGrants,
        assertions: ClientAssertionVerifier,
        leeway: int,
    ) -> None:
        super().__init__(scopes_supported=sorted(scopes.supported))
        self.issuer = issuer
        self.store = store
        self.clients = clients
        self.keys = keys
        self.resources = resources
        self.scopes = scopes
        self.redirects = redirects
        self.assertions = assertions
        self.register_client_auth_method("private_key_jwt", authenticate_private_key_jwt)
        # The verifiers of the gate too: one cache per resource, one grant check for all.
        self.own_token_verifiers = {
            resource: access_token_verifier(issuer, resource, keys, grants, leeway=leeway) for resource in resources
        }
        self.register_token_generator("default", AccessTokenGenerator(issuer, keys))
        default_resource = next(iter(resources)) if len(resources) == 1 else None
        self.register_grant(CodeGrant, [S256Required(required=True), ResourceIndicator(resources, default_resource)])
        self.register_grant(RotatingRefreshGrant)
        self.register_endpoint(Registration(self))
        self.register_endpoint(Revocation(self))
        self.register_endpoint(Introspection(self))
        self.issuer_parameter = Rfc9207Issuer(issuer)
        self.register_extension(self.issuer_parameter)

    # Authlib hooks --------------------------------------------------------------------------

    def query_client(self, client_id: str) -> OAuthClient | None:
        if self.clients.names_document(client_id):
            # Fetched by :meth:`respond`; a URL sent only in HTTP Basic is never fetched (a metadata
            # document client has no secret to send there: CIMD §4.1).
            found = _DOCUMENT_CLIENTS.get().get(client_id)
            if isinstance(found, ClientMetadataError):
                raise InvalidClientError(description=str(found))
            return found
        return _run(self.clients.get, client_id)

    def save_token(self, token: dict[str, Any], request) -> None:  # type: ignore[no-untyped-def]
        refresh = token.get("refresh_token")
        if not refresh:
            return
        grantee: Grantee = request.user
        record = RefreshToken(
            token_hash=secret_hash(refresh),
            family_id=grantee.family_id,
            client_id=request.client.client_id,
            user_id=grantee.user_id,
            scope=token.get("scope", ""),
            resource=grantee.resource,
            created_at=now(),
            expires_at=now() + REFRESH_TOKEN_SECONDS,
        )
        _run(self.store.add_refresh_token, record)

    def validate_requested_scope(self, scope) -> None:  # type: ignore[no-untyped-def]
        """Scopes are narrowed by ``OAuthClient.get_allowed_scope``, never refused."""

    def create_oauth2_request(self, request):  # type: ignore[no-untyped-def]
        return request  # the Starlette adapter builds it

    def create_json_request(self, request):  # type: ignore[no-untyped-def]
        return request

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> OAuthResponse:
        return OAuthResponse(status, body, headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Signals are not used."""

    # Answering ----------------------------------------------------------------------------------

    async def respond(self, entry_point: Callable[..., Any], request: OAuth2Request, *args: Any) -> Any:
        """Authlib's synchronous ``entry_point(request, *args)`` in a worker thread, once the request's
        client metadata document (if its ``client_id`` names one) has been fetched here, on the event loop.

        A client assertion (``private_key_jwt``) is checked here too, its keys fetched if need be.
        Raises :class:`TemporarilyUnavailableError` when a fetcher is busy (its bounds reached) or
        the store of used assertion ids does not answer (fail closed).
        """
        asserted = carries_assertion(request.form)
        client_id = request.payload.client_id or (claimed_client_id(request.form) if asserted else None)
        fetched = _DOCUMENT_CLIENTS.get()
        if isinstance(client_id, str) and client_id not in fetched and self.clients.names_document(client_id):
            client: OAuthClient | ClientMetadataError | None
            try:
                client = await self.clients.get(client_id)
            except ClientMetadataBusy as busy:
                raise TemporarilyUnavailableError(str(busy)) from None
            except ClientMetadataError as refused:
                client = refused
            _DOCUMENT_CLIENTS.set({**fetched, client_id: client})  # this request's context only
        if asserted:
            _ASSERTED_CLIENT.set(await self._asserted_client(request, client_id))  # this request's only
        return await anyio.to_thread.run_sync(entry_point, request, *args)

    async def _asserted_client(self, request: OAuth2Request, client_id: str | None) -> OAuthClient | InvalidClientError:
        """The client the request's assertion authenticates, or why not (RFC 6749 §5.2: ``invalid_client``, 401)."""

        def refused(description: str) -> InvalidClientError:
            return InvalidClientError(status_code=401, description=description)

        if request.form.get("client_secret") or request.headers.get("authorization"):
            return refused("Use one client authentication method per request.")  # RFC 6749 §2.3
        if not client_id:
            return refused("The client_assertion names no client.")
        client = _DOCUMENT_CLIENTS.get().get(client_id) if self.clients.names_document(client_id) else \
            await self.clients.get(client_id)
        if not isinstance(client, OAuthClient):
            return refused("The client is unknown or its metadata could not be used.")
        if not client.check_endpoint_auth_method("private_key_jwt", "token"):
            # RFC 7591 §2: the client authenticates with the method it registered. A public client's
            # assertion is refused, not ignored: RFC 6749 §3.2.1, the server MUST "authenticate the
            # client if client authentication is included", and this client has no keys to verify it.
            return refused("The client is not registered for private_key_jwt.")
        try:
            await self.assertions.verify(client.client_id, client.jwks, client.jwks_uri, request.form)
        except AssertionRefused as refusal:
            return refused(str(refusal))
        except ClientKeysBusy as busy:
            raise TemporarilyUnavailableError(str(busy)) from None
        except ClientKeysUnavailable:
            return refused("The client's published keys could not be fetched.")  # the reason is in the log
        except RateLimitUnavailable:  # fail closed: an assertion is never accepted unrecorded
            raise TemporarilyUnavailableError("The client_assertion could not be checked. Try again shortly.") \
                from None
        return client

    # Helpers ---------------------------------------------------------------------------------

    def grantee(self, user_id: int, resource: str, family_id: str) -> Grantee | None:
        user = _run(self.store.user, user_id)
        return Grantee(user.id, user.subject, resource, family_id) if user else None

    def verify_own_access_token(self, token: str) -> VerifiedAccessToken | None:
        """One of this server's access tokens, still valid and its grant live, or ``None``."""
        for resource, verifier in self.own_token_verifiers.items():
            try:
                return VerifiedAccessToken(_run(verifier.verify, token), resource)
            except InvalidToken:
                continue
        return None


class OAuthResponse:
    """What Authlib answers; ``location`` is writable because RFC 9207's extension rewrites it."""

    def __init__(self, status: int, body: Any, headers: list[tuple[str, str]]) -> None:
        self.status = status
        self.body = body
        self.headers = [(k, v) for k, v in headers if k.lower() != "location"]
        self.location = next((v for k, v in headers if k.lower() == "location"), None)


class Rfc9207Issuer(IssuerParameter):
    """RFC 9207 §2: ``iss`` on every authorization response."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


class KeyRingSource:
    """The key ring as a verifier's key source: no HTTP round trip for the server's own tokens."""

    def __init__(self, keys: KeyRing) -> None:
        self._keys = keys

    async def keys(self, kid: str | None) -> KeySet:
        return self._keys.keys_for(kid)  # a key rotated in by another instance is read now


def _is_jwk_set(value: Any) -> bool:
    """RFC 7517 §5: a JWK Set is an object whose ``keys`` member is an array of JWK objects."""
    keys = value.get("keys") if isinstance(value, dict) else None
    return isinstance(keys, list) and all(isinstance(key, dict) for key in keys)


class Registration(ClientRegistrationEndpoint):
    """RFC 7591 dynamic registration: public clients get no secret; secrets are stored hashed."""

    server: McpAuthorizationServer

    def authenticate_token(self, request) -> bool:  # type: ignore[no-untyped-def]
        return True  # open registration (MCP); rate-limited in front

    def get_server_metadata(self) -> dict[str, Any]:
        return {"scopes_supported": sorted(self.server.scopes.supported)}

    def extract_client_metadata(self, request):  # type: ignore[no-untyped-def]
        data = request.payload.data
        if not isinstance(data, dict):
            raise InvalidRequestError("The registration request must be a JSON object.")
        # Checked before Authlib's claim validation, so that every refused redirect URI is answered
        # with RFC 7591 §3.2.2 ``invalid_redirect_uri`` (Authlib says ``invalid_client_metadata``).
        uris = data.get("redirect_uris")
        if not isinstance(uris, list) or not uris or not all(
                isinstance(uri, str) and self.server.redirects.permits(uri) for uri in uris):
            raise InvalidRedirectURIError(REDIRECT_POLICY)
        if "scope" in data:  # narrowed, never refused: real clients ask for scopes we do not have
            data["scope"] = self.server.scopes.grantable(
                data["scope"] if isinstance(data["scope"], str) else None, None
            ) or None
            if data["scope"] is None:
                del data["scope"]
        for name in ("grant_types", "response_types"):  # RFC 7591 §2: arrays of strings
            if name in data and not (isinstance(data[name], list) and all(isinstance(v, str) for v in data[name])):
                raise InvalidClientMetadataError(f"{name} must be a list of strings.")
        if "jwks" in data and not _is_jwk_set(data["jwks"]):  # Authlib's check raises on other shapes
            raise InvalidClientMetadataError("jwks must be a JWK Set: an object whose keys is a list of objects.")
        data.setdefault("token_endpoint_auth_method", "none")
        data.setdefault("grant_types", ["authorization_code", "refresh_token"])
        data.setdefault("response_types", ["code"])
        return super().extract_client_metadata(request)

    def check_published_keys(self, client_metadata: dict[str, Any]) -> None:
        """A ``private_key_jwt`` client publishes public signing keys, inline or at an https URL; the
        rules of metadata documents apply (:mod:`.public_keys`, :mod:`.client_keys`)."""
        if client_metadata.get("token_endpoint_auth_method") != "private_key_jwt":
            return  # other clients' keys are never used here (Authlib checked their shape)
        jwks, jwks_uri = client_metadata.get("jwks"), client_metadata.get("jwks_uri")
        if (jwks is None) == (jwks_uri is None):  # RFC 7591 §2: one or the other, MUST NOT both be present
            raise InvalidClientMetadataError("private_key_jwt needs the client's public keys: jwks or jwks_uri.")
        if jwks is not None:
            try:
                public_key_set(jwks)
            except KeySetRefused as refused:
                raise InvalidClientMetadataError(f"jwks {refused}.") from None
        elif not is_web_url(jwks_uri, allow_loopback=self.server.clients.allow_loopback_metadata):
            raise InvalidClientMetadataError("jwks_uri must be an https URL.")

    def generate_client_id(self, request) -> str:  # type: ignore[no-untyped-def]
        return secrets.token_urlsafe(24)

    def generate_client_secret(self, request) -> str | None:  # type: ignore[no-untyped-def]
        if request.payload.data.get("token_endpoint_auth_method") not in ("client_secret_basic", "client_secret_post"):
            return None  # a public client, or one with keys, gets no secret
        return secrets.token_urlsafe(32)

    def generate_client_info(self, request):  # type: ignore[no-untyped-def]
        info = super().generate_client_info(request)
        if info["client_secret"] is None:
            del info["client_secret"], info["client_secret_expires_at"]
        return info

    def save_client(self, client_info, client_metadata, request):  # type: ignore[no-untyped-def]
        method = client_metadata.get("token_endpoint_auth_method")
        if method not in CLIENT_AUTH_METHODS:  # RFC 7591 §3.2.2: a bad metadata value
            raise InvalidClientMetadataError(
                "token_endpoint_auth_method must be none, private_key_jwt, client_secret_basic or client_secret_post."
            )
        self.check_published_keys(client_metadata)
        uris = client_metadata.get("redirect_uris") or []
        if not uris or not all(isinstance(uri, str) and self.server.redirects.permits(uri) for uri in uris):
            raise InvalidRedirectURIError(REDIRECT_POLICY)
        if "authorization_code" not in client_metadata.get("grant_types", []):
            raise InvalidClientMetadataError("The client must use the authorization_code grant.")
        if client_metadata.get("response_types") != ["code"]:  # OAuth 2.1: the code flow only
            raise InvalidClientMetadataError("response_types must be code only.")
        name = client_metadata.get("client_name", "Unnamed client")
        problem = client_name_problem(name)
        if problem is not None:  # the consent and account pages show it: the rule CIMD documents follow
            raise InvalidClientMetadataError(f"client_name {problem}.")
        secret = client_info.get("client_secret")
        registered = RegisteredClient(
            client_id=client_info["client_id"],
            client_name=name.strip(),
            secret_hash=secret_hash(secret) if secret else None,
            client_metadata=client_metadata,
            created_at=client_info["client_id_issued_at"],
        )
        _run(self.server.store.add_client, registered)
        return self.server.clients.from_registration(registered)


def _token_record(server: McpAuthorizationServer, token: str) -> StoredRefreshToken | VerifiedAccessToken | None:
    record = _run(server.store.refresh_token, secret_hash(token))
    if record is not None:
        return StoredRefreshToken(record)
    return server.verify_own_access_token(token)


class Revocation(RevocationEndpoint):
    """RFC 7009. Revoking either token revokes its grant: the refresh-token family and every access
    token of it (§2.1: the server MAY revoke related tokens), refused within a second everywhere."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS
    server: McpAuthorizationServer

    def query_token(self, token_string, token_type_hint):  # type: ignore[no-untyped-def]
        return _token_record(self.server, token_string)

    def revoke_token(self, token, request) -> None:  # type: ignore[no-untyped-def]
        grant_id = token.record.family_id if isinstance(token, StoredRefreshToken) else token.token.grant_id
        _run(self.server.store.revoke_family, grant_id)


class Introspection(IntrospectionEndpoint):
    """RFC 7662; only authenticated (confidential) clients may introspect (§2.1)."""

    CLIENT_AUTH_METHODS = CONFIDENTIAL_AUTH_METHODS
    server: McpAuthorizationServer

    def query_token(self, token_string, token_type_hint):  # type: ignore[no-untyped-def]
        return _token_record(self.server, token_string)

    def check_permission(self, token, client, request) -> bool:  # type: ignore[no-untyped-def]
        """RFC 7662 §4: a client may introspect only the tokens issued to it (registration is open)."""
        return bool(token.check_client(client))

    def introspect_token(self, token) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        if isinstance(token, StoredRefreshToken):
            record = token.record
            return {"active": True, "token_type": "refresh_token", "client_id": record.client_id,
                    "scope": record.scope, "exp": record.expires_at, "iss": self.server.issuer}
        verified: VerifiedToken = token.token
        return {"active": True, "token_type": "access_token", "client_id": verified.client_id,
                "scope": " ".join(sorted(verified.scopes)), "sub": verified.subject, "aud": token.audience,
                "exp": verified.expires_at, "iss": self.server.issuer}

