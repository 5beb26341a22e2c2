"""Chooses how access tokens are verified, from the settings."""

from __future__ import annotations

import httpx

from ringfence.config import Settings
from ringfence.refusals import InvalidToken
from ringfence.resource.introspection import IntrospectionVerifier
from ringfence.resource.tokens import (
    JwksCache,
    JwtVerifier,
    TokenCache,
    TokenVerifier,
    VerifiedToken,
    looks_like_jwt,
)


class JwtOrIntrospection:
    """JWT-shaped tokens are verified locally; anything else is introspected."""

    def __init__(self, jwt: TokenVerifier | None, introspection: TokenVerifier | None) -> None:
        self._jwt = jwt
        self._introspection = introspection

    async def verify(self, token: str) -> VerifiedToken:
        if self._jwt is not None and (self._introspection is None or looks_like_jwt(token)):
            return await self._jwt.verify(token)
        if self._introspection is not None:
            return await self._introspection.verify(token)
        raise InvalidToken("The access token is malformed.")


def build_verifier(settings: Settings, client: httpx.AsyncClient) -> TokenVerifier:
    """The verifier for an external identity provider (``--issuer``).

    JWT verifications are remembered until each token's ``exp``; introspection answers (how such an
    issuer revokes its tokens) for at most a second."""
    assert settings.issuer is not None
    jwt = introspection = None
    if settings.jwks_url:
        jwt = JwtVerifier(
            issuer=settings.issuer,
            audience=settings.expected_audience,
            algorithms=settings.algorithms,
            keys=JwksCache(
                settings.jwks_url,
                client,
                max_age=settings.jwks_cache_seconds,
                refresh_interval=settings.jwks_refresh_interval_seconds,
            ),
            leeway=settings.clock_leeway_seconds,
            cache=TokenCache(),
        )
    if settings.introspection_url:
        introspection = IntrospectionVerifier(
            url=settings.introspection_url,
            client_id=settings.introspection_client_id or "",
            client_secret=settings.introspection_client_secret or "",
            issuer=settings.issuer,
            audience=settings.expected_audience,
            client=client,
            leeway=settings.clock_leeway_seconds,
            cache=TokenCache(),
        )
    return JwtOrIntrospection(jwt, introspection)
