"""Chooses how access tokens are verified, from what the external identity provider offers."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

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


@dataclass(frozen=True)
class ProviderOptions:
    """An external identity provider (``--issuer``): a JWKS URL, an introspection endpoint, or both."""

    issuer: str
    audience: str
    algorithms: tuple[str, ...]
    clock_leeway_seconds: int
    jwks_url: str | None
    jwks_cache_seconds: int
    jwks_refresh_interval_seconds: int
    introspection_url: str | None
    introspection_client_id: str | None
    introspection_client_secret: str | None


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


def build_verifier(provider: ProviderOptions, client: httpx.AsyncClient) -> TokenVerifier:
    """The verifier for ``provider``'s access tokens.

    JWT verifications are remembered until each token's ``exp``; introspection answers (how such an
    issuer revokes its tokens) for at most a second."""
    jwt = introspection = None
    if provider.jwks_url:
        jwt = JwtVerifier(
            issuer=provider.issuer,
            audience=provider.audience,
            algorithms=provider.algorithms,
            keys=JwksCache(
                provider.jwks_url,
                client,
                max_age=provider.jwks_cache_seconds,
                refresh_interval=provider.jwks_refresh_interval_seconds,
            ),
            leeway=provider.clock_leeway_seconds,
            cache=TokenCache(),
        )
    if provider.introspection_url:
        introspection = IntrospectionVerifier(
            url=provider.introspection_url,
            client_id=provider.introspection_client_id or "",
            client_secret=provider.introspection_client_secret or "",
            issuer=provider.issuer,
            audience=provider.audience,
            client=client,
            leeway=provider.clock_leeway_seconds,
            cache=TokenCache(),
        )
    return JwtOrIntrospection(jwt, introspection)
