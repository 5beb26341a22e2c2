"""Opaque access tokens checked through the issuer's RFC 7662 introspection endpoint.

Introspection is how such an issuer revokes its tokens, so an active answer is remembered for at
most :data:`REMEMBERED_SECONDS`, and never past the token's ``exp`` (RFC 7662 §4: a cached answer
must not outlive it, and revocation is seen only when the issuer is asked again). Inactive answers
and failures are never remembered.
"""

from __future__ import annotations

import time

import httpx

from ringfence.refusals import InvalidToken, VerifierUnavailable
from ringfence.resource.tokens import TokenCache, VerifiedToken, scopes_from_claims

MAX_INTROSPECTION_BYTES = 64 * 1024
REMEMBERED_SECONDS = 1.0


class IntrospectionVerifier:
    """RFC 7662 §2: asks the authorization server whether a token is active, then checks it here too."""

    def __init__(
        self,
        *,
        url: str,
        client_id: str,
        client_secret: str,
        issuer: str,
        audience: str,
        client: httpx.AsyncClient,
        leeway: int,
        cache: TokenCache[VerifiedToken] | None = None,
    ) -> None:
        self._url = url
        self._auth = httpx.BasicAuth(client_id, client_secret)  # RFC 7662 §2.1: the caller authenticates
        self._issuer = issuer
        self._audience = audience
        self._client = client
        self._leeway = leeway
        self._cache = cache
        self._clock = cache.clock if cache is not None else time.time

    async def verify(self, token: str) -> VerifiedToken:
        if self._cache is None:
            return await self._introspect(token)
        verified = self._cache.get(token)
        if verified is None:
            verified = await self._introspect(token)
            until = self._clock() + REMEMBERED_SECONDS
            self._cache.put(token, verified, min(until, verified.expires_at or until))
        return verified

    async def _introspect(self, token: str) -> VerifiedToken:
        try:
            response = await self._client.post(
                self._url,
                data={"token": token, "token_type_hint": "access_token"},
                auth=self._auth,
                headers={"accept": "application/json"},
            )
        except httpx.HTTPError:
            raise VerifierUnavailable("The token introspection endpoint could not be reached.") from None
        if response.status_code != 200 or len(response.content) > MAX_INTROSPECTION_BYTES:
            raise VerifierUnavailable("The token introspection endpoint did not answer.")
        try:
            claims = response.json()
        except ValueError:
            raise VerifierUnavailable("The token introspection endpoint gave an unreadable answer.") from None
        if not isinstance(claims, dict) or claims.get("active") is not True:
            raise InvalidToken("The access token is not active.")
        return self._check(claims)

    def _check(self, claims: dict) -> VerifiedToken:
        now = self._clock()
        iss = claims.get("iss", self._issuer)
        if iss != self._issuer:
            raise InvalidToken("The access token was issued by an untrusted issuer.")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if self._audience not in audiences:  # RFC 8707 §2: fail closed when no audience is given
            raise InvalidToken("The access token was not issued for this server.")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp + self._leeway <= now:  # RFC 7519 §4.1.4: not on or after exp
            raise InvalidToken("The access token has expired.")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf - self._leeway > now:
            raise InvalidToken("The access token is not valid yet.")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("The access token has no subject.")
        client_id = claims.get("client_id")
        return VerifiedToken(
            subject=subject,
            client_id=client_id if isinstance(client_id, str) else None,
            scopes=scopes_from_claims(claims),
            issuer=self._issuer,
            expires_at=int(exp),
        )
