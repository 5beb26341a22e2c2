"""Access-token verification against an issuer's JWKS (RFC 9068 JWT access tokens).

Everything here fails closed: a token is accepted only when its signature, issuer, audience and
lifetime have all been checked; when the keys cannot be fetched the call is refused with
:class:`VerifierUnavailable`, never let through.

A :class:`JwtVerifier` given a :class:`TokenCache` remembers what it verified, under the SHA-256 of
the token (never the token), until the token's ``exp`` and never past it: a client's repeated calls
then skip the signature check. Only successes are remembered, and only while the issuer's key set
is the very one they were checked against (a rotation, a refetched JWKS or a removed key makes each
token be checked again once). Whatever else may end a token early (revocation, a deleted account)
is checked by the verifier that wraps this one, on every call.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import httpx
from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import KeySet

from ringfence.refusals import InvalidToken, VerifierUnavailable

MAX_JWKS_BYTES = 256 * 1024
# RFC 9068 §2.1: typ "at+jwt"; plain "JWT" (or none) is what most identity providers still send.
ACCEPTED_TYP = frozenset({"at+jwt", "application/at+jwt", "jwt"})
CACHED_TOKENS = 10_000  # verified tokens remembered at once by a verifier; the oldest makes room


@dataclass(frozen=True)
class VerifiedToken:
    """The facts a verified token establishes; the gate turns them into a Principal."""

    subject: str
    client_id: str | None
    scopes: frozenset[str]
    issuer: str
    expires_at: int | None
    grant_id: str | None = None  # the grant the token came from, when its issuer names it


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> VerifiedToken: ...


class KeySource(Protocol):
    """Where a verifier gets the issuer's public keys (a JWKS URL, or the embedded server's key ring)."""

    async def keys(self, kid: str | None) -> KeySet: ...


def scopes_from_claims(claims: dict[str, Any]) -> frozenset[str]:
    """RFC 9068 §2.2.3 ``scope`` (space-separated), or the ``scp`` list some providers send."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, list) and all(isinstance(item, str) for item in scp):
        return frozenset(scp)
    if isinstance(scp, str):
        return frozenset(scp.split())
    return frozenset()


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ExpiringMap(Generic[K, V]):
    """At most ``max_entries`` values, each forgotten at its own time by ``clock``; when full, the
    oldest entry makes room. Used for verified tokens and for confirmed grants."""

    def __init__(self, max_entries: int, clock: Callable[[], float]) -> None:
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[K, tuple[V, float]] = {}  # insertion order: oldest first

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() < entry[1]:
            return entry[0]
        self._entries.pop(key, None)
        return None

    def put(self, key: K, value: V, until: float) -> None:
        """Remember ``value`` until ``until`` (by the clock), not at all when that has passed."""
        self._entries.pop(key, None)
        if until <= self._clock():
            return
        if len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (value, until)

    def discard(self, key: K) -> None:
        self._entries.pop(key, None)

    def discard_values(self, matches: Callable[[V], bool]) -> None:
        for key in [key for key, (value, _) in self._entries.items() if matches(value)]:
            del self._entries[key]


def token_key(token: str) -> bytes:
    """What a cache files a token under: its SHA-256, so that no cache holds a usable token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class CachedToken:
    verified: VerifiedToken
    kid: str | None
    keys: KeySet  # the key set the signature was checked against; any other means: check again


class TokenCache(Generic[V]):
    """What a verifier concluded about tokens, filed by :func:`token_key`, each until a time by
    ``clock``: wall time, as ``exp`` is (the verifier checks ``exp`` by the same clock)."""

    def __init__(self, max_entries: int = CACHED_TOKENS, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._entries: ExpiringMap[bytes, V] = ExpiringMap(max_entries, clock)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> V | None:
        return self._entries.get(token_key(token))

    def put(self, token: str, value: V, until: float) -> None:
        self._entries.put(token_key(token), value, until)


class JwksCache:
    """The issuer's public keys, fetched over HTTP, cached, refreshed at most once per interval."""

    def __init__(self, url: str, client: httpx.AsyncClient, *, max_age: float, refresh_interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._url = url
        self._client = client
        self._max_age = max_age
        self._refresh_interval = refresh_interval
        self._clock = clock
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def keys(self, kid: str | None) -> KeySet:
        """Keys that may hold ``kid``: cached, or refreshed once when ``kid`` is unknown."""
        now = self._clock()
        keys = self._keys
        fresh = keys is not None and now - self._fetched_at < self._max_age
        if fresh and (kid is None or _has_kid(keys, kid)):
            return keys  # type: ignore[return-value]
        if fresh and now - self._fetched_at < self._refresh_interval:
            return keys  # type: ignore[return-value]  # bounded: an unknown kid cannot force a fetch storm
        async with self._lock:
            if self._keys is not keys:  # another request refreshed while we waited
                return self._keys  # type: ignore[return-value]
            self._keys = await self._fetch()
            self._fetched_at = self._clock()
            return self._keys

    async def _fetch(self) -> KeySet:
        try:
            response = await self._client.get(self._url, headers={"accept": "application/json"})
        except httpx.HTTPError:
            raise VerifierUnavailable("The identity provider's signing keys could not be fetched.") from None
        if response.status_code != 200 or len(response.content) > MAX_JWKS_BYTES:
            raise VerifierUnavailable("The identity provider's signing keys could not be fetched.")
        try:
            document = response.json()
            signing = [key for key in document["keys"] if isinstance(key, dict) and key.get("use", "sig") == "sig"]
            return KeySet.import_key_set({"keys": signing})
        except (ValueError, KeyError, TypeError, JoseError):
            raise VerifierUnavailable("The identity provider published an unreadable key set.") from None


def _has_kid(keys: KeySet | None, kid: str) -> bool:
    return keys is not None and any(key.kid == kid for key in keys.keys)


class JwtVerifier:
    """Verifies RFC 9068 JWT access tokens: asymmetric signature, ``iss``, ``aud``, ``exp``/``nbf``."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        algorithms: tuple[str, ...],
        keys: KeySource,
        leeway: int,
        grant_claim: str | None = None,
        cache: TokenCache[CachedToken] | None = None,
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._algorithms = list(algorithms)
        self._keys = keys
        self._leeway = leeway
        self._grant_claim = grant_claim  # required when set: the claim naming the token's grant
        self._cache = cache
        self._clock = cache.clock if cache is not None else time.time

    async def verify(self, token: str) -> VerifiedToken:
        cached = self._cache.get(token) if self._cache is not None else None
        if cached is not None and await self._keys.keys(cached.kid) is cached.keys:
            return cached.verified
        verified, kid, keys = await self._verify(token)
        if self._cache is not None and verified.expires_at is not None:
            # Until exp, never past it (the leeway is for clock skew on the first check, not a grace).
            self._cache.put(token, CachedToken(verified, kid, keys), verified.expires_at)
        return verified

    async def _verify(self, token: str) -> tuple[VerifiedToken, str | None, KeySet]:
        """The token checked in full, with its ``kid`` and the key set that verified it."""
        if not looks_like_jwt(token):
            raise InvalidToken("The access token is not a JWT.")
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError, UnicodeError):
            raise InvalidToken("The access token is malformed.") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self._algorithms:
            raise InvalidToken("The access token is signed with an algorithm this server does not accept.")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("The access token is malformed.")
        keys = await self._keys.keys(kid)
        if kid is not None and not _has_kid(keys, kid):
            raise InvalidToken("The access token is signed with an unknown key.")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # joserfc warns that "EdDSA" is superseded by RFC 9864
                decoded = jwt.decode(token, keys, algorithms=self._algorithms)
        except (JoseError, ValueError, UnicodeError):
            raise InvalidToken("The access token signature is invalid.") from None
        typ = decoded.header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in ACCEPTED_TYP):
            raise InvalidToken("The token is not an access token.")
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            leeway=self._leeway,
            iss={"essential": True, "value": self._issuer},  # OAuth 2.1 §5.2: exact issuer
            aud={"essential": True, "value": self._audience},  # RFC 8707 §2: aud must contain the resource
            exp={"essential": True},
            sub={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise InvalidToken(_claim_problem(exc)) from None
        grant_id = claims.get(self._grant_claim) if self._grant_claim else None
        if self._grant_claim and (not isinstance(grant_id, str) or not grant_id):
            raise InvalidToken(f"The access token has a missing or invalid {self._grant_claim} claim.")
        client_id = claims.get("client_id", claims.get("azp"))
        return VerifiedToken(
            subject=str(claims["sub"]),
            client_id=client_id if isinstance(client_id, str) else None,
            scopes=scopes_from_claims(claims),
            issuer=self._issuer,
            expires_at=int(claims["exp"]),
            grant_id=grant_id,
        ), kid, keys


def _claim_problem(exc: JoseError) -> str:
    if isinstance(exc, ExpiredTokenError):
        return "The access token has expired."
    claim = getattr(exc, "claim", None)
    # joserfc's InvalidTokenError is an alias of InvalidClaimError (every bad claim), so go by the claim.
    if claim in ("nbf", "iat"):
        return "The access token is not valid yet."
    if claim == "aud":
        return "The access token was not issued for this server."
    if claim == "iss":
        return "The access token was issued by an untrusted issuer."
    if claim:
        return f"The access token has a missing or invalid {claim} claim."
    return "The access token's claims are invalid."
