"""``private_key_jwt``: a client authenticates with a JWT it signed with a key it published (RFC 7523 §2.2, §3).

Written here with joserfc rather than with Authlib's ``JWTBearerClientAssertion`` (1.9.10), which
decodes without an ``algorithms`` allow-list, looks the client up by the unverified ``sub`` (ignoring a
``client_id`` sent with it), has no ``iat`` check and no bound on an assertion's lifetime, and calls a
synchronous ``jti`` hook from Authlib's worker thread. Here, in order, before anything is issued:

1. ``client_assertion_type`` is the JWT bearer type (RFC 7521 §4.2) and the assertion is a compact JWS;
2. its ``alg`` is an asymmetric signature algorithm (never ``none`` or HS*: a public key is not a secret);
3. the key is one the client published for that algorithm (:mod:`.client_keys`) and the signature holds;
4. ``iss`` = ``sub`` = the client id, ``aud`` names this server, ``exp``/``iat``/``nbf`` are in range and
   the assertion lives at most :data:`MAX_ASSERTION_SECONDS`;
5. its ``jti`` has not been used by the client before (single use across instances, :class:`SingleUseIds`).

A refusal is an :class:`AssertionRefused` with a short description safe to send back.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import typing
from collections.abc import Callable, Mapping
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError

from ringfence.authserver.client_keys import ClientKeys
from ringfence.authserver.public_keys import SIGNING_ALGORITHMS
from ringfence.ops.ratelimit import Rate, RateLimiter

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_PARAMETERS = ("client_assertion", "client_assertion_type")
MAX_ASSERTION_SECONDS = 300  # exp - iat: an assertion is made for one request, not kept
MAX_ASSERTION_CHARS = 8192
MAX_JTI_CHARS = 256
MAX_LEEWAY_SECONDS = 60


class AssertionRefused(Exception):
    """The client assertion does not authenticate the client; the message is the ``error_description``."""


def carries_assertion(form: Mapping[str, str]) -> bool:
    """Whether the request tries assertion authentication (either parameter, even empty, counts)."""
    return any(name in form for name in ASSERTION_PARAMETERS)


def _unverified(assertion: object) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWS, not yet verified; raises :class:`AssertionRefused`."""
    if not isinstance(assertion, str) or not assertion or len(assertion) > MAX_ASSERTION_CHARS:
        raise AssertionRefused("The client_assertion is missing or too long.")
    try:
        compact = jws.extract_compact(assertion.encode("ascii"))
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeError):
        raise AssertionRefused("The client_assertion is not a signed JWT.") from None
    if not isinstance(claims, dict):
        raise AssertionRefused("The client_assertion is not a signed JWT.")
    return compact.headers(), claims


def claimed_client_id(form: Mapping[str, str]) -> str | None:
    """The client the assertion says it is (``sub``, RFC 7523 §3 item 2), unverified: only to find the
    client whose keys will verify it, when the request carries no ``client_id`` (RFC 7521 §4.2: optional)."""
    try:
        _, claims = _unverified(form.get("client_assertion"))
    except AssertionRefused:
        return None
    subject = claims.get("sub")
    return subject if isinstance(subject, str) and subject else None


def _is_time(value: object) -> bool:
    """RFC 7519 §2 NumericDate: a JSON number (not a boolean), finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class SingleUseIds:
    """Assertion ids (``jti``) used per client, each refused again until its assertion has expired.

    Kept in the shared rate limiter as a budget of one use for the assertion's remaining life: in
    Redis when instances share one (one atomic script, so two instances cannot both accept it), in
    this process otherwise. A limiter that does not answer raises ``RateLimitUnavailable``: fail closed.
    """

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def first_use(self, client_id: str, jti: str, seconds: float) -> bool:
        digest = hashlib.sha256(f"{client_id}\n{jti}".encode()).hexdigest()
        decision = await self.limiter.hit(f"client-assertion:{digest}", Rate(limit=1, period=max(1.0, seconds)))
        return decision.allowed


class ClientAssertionVerifier:
    """Checks ``private_key_jwt`` client assertions for the authorization server ``issuer``."""

    def __init__(self, *, issuer: str, keys: ClientKeys, used: SingleUseIds, leeway: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.keys = keys
        self.used = used
        self.leeway = min(max(0, leeway), MAX_LEEWAY_SECONDS)
        self._clock = clock
        # RFC 7523 §3 item 3: the audience is this server: its issuer identifier (what RFC 7523bis
        # recommends) or its token endpoint URL (what RFC 7523 suggests, and many clients send); both
        # name this server only, at every endpoint that authenticates clients.
        self.audiences = frozenset({issuer, f"{issuer}/token"})

    async def verify(self, client_id: str, jwks: Mapping[str, Any] | None, jwks_uri: str | None,
                     form: Mapping[str, str]) -> None:
        """Returns when the request's assertion authenticates ``client_id``; raises :class:`AssertionRefused`,
        ``ClientKeysBusy`` or ``RateLimitUnavailable`` otherwise (keys or the ``jti`` store unavailable)."""
        if form.get("client_assertion_type") != ASSERTION_TYPE:  # RFC 7521 §4.2
            raise AssertionRefused(f"The client_assertion_type must be {ASSERTION_TYPE}.")
        assertion = form.get("client_assertion")
        header, _ = _unverified(assertion)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in SIGNING_ALGORITHMS:  # never "none", never HS*
            raise AssertionRefused("The client_assertion must be signed with an asymmetric algorithm.")
        key = await self.keys.key_for(jwks, jwks_uri, header.get("kid"), alg)
        if key is None:
            raise AssertionRefused("The client_assertion is signed with a key the client has not published.")
        try:
            claims = jwt.decode(typing.cast(str, assertion), key, algorithms=[alg]).claims
        except JoseError:
            raise AssertionRefused("The client_assertion signature is not valid.") from None
        jti, expires = self._check_claims(client_id, claims)
        # RFC 7523 §3 item 7: the jti is remembered until the assertion expires; a second use is refused.
        if not await self.used.first_use(client_id, jti, expires - self._clock() + self.leeway):
            raise AssertionRefused("The client_assertion was already used.")

    def _check_claims(self, client_id: str, claims: dict[str, Any]) -> tuple[str, float]:
        """The assertion's ``jti`` and ``exp`` once every claim rule holds; raises :class:`AssertionRefused`."""
        now = self._clock()
        # RFC 7523 §3 items 1-2: iss and sub MUST be the client_id (RFC 7523 §2.2).
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise AssertionRefused("The client_assertion iss and sub must be the client_id.")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(isinstance(value, str) and value in self.audiences for value in audiences):
            raise AssertionRefused("The client_assertion aud must be this server's issuer or token endpoint.")
        expires, issued = claims.get("exp"), claims.get("iat")
        # RFC 7523 §3 item 4: exp is required, and the JWT is refused once it has passed.
        if not _is_time(expires) or not _is_time(issued):
            raise AssertionRefused("The client_assertion must have exp and iat.")
        if expires <= now - self.leeway:
            raise AssertionRefused("The client_assertion has expired.")
        if issued > now + self.leeway:  # RFC 7523 §3 item 6: iat may bound how old a JWT is accepted
            raise AssertionRefused("The client_assertion was issued in the future.")
        if not 0 < expires - issued <= MAX_ASSERTION_SECONDS:
            raise AssertionRefused(f"The client_assertion must expire within {MAX_ASSERTION_SECONDS} seconds "
                                   "of its iat.")
        not_before = claims.get("nbf")  # RFC 7523 §3 item 5
        if not_before is not None and (not _is_time(not_before) or not_before > now + self.leeway):
            raise AssertionRefused("The client_assertion is not valid yet.")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:  # required here (§3 item 7: MAY)
            raise AssertionRefused("The client_assertion must have a jti.")
        return jti, float(expires)
