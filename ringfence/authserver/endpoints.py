"""The OAuth protocol endpoints: metadata, keys, token, registration, revocation, introspection."""

from __future__ import annotations

import functools

import anyio.to_thread
from authlib.oauth2.rfc6749 import OAuth2Error
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ringfence.audit.records import EventKind
from ringfence.authserver.adapter import json_request, oauth_request, to_starlette
from ringfence.authserver.events import AuthEvents
from ringfence.authserver.oauth import McpAuthorizationServer
from ringfence.authserver.throttle import Throttle, address_key
from ringfence.ops.ratelimit import RateLimitUnavailable

# CORS for these endpoints is decided in one place, ops/cors.py.
PUBLIC_JSON = {"cache-control": "public, max-age=300"}
NO_STORE = {"cache-control": "no-store"}


def oauth_error(error: OAuth2Error) -> Response:
    status, body, headers = error()
    response = JSONResponse(body, status, headers=dict(headers))
    response.headers["cache-control"] = "no-store"  # replaces Authlib's "Cache-Control": one header, not two
    return response


class ProtocolEndpoints:
    def __init__(self, server: McpAuthorizationServer, metadata: dict, *, registrations: Throttle,
                 events: AuthEvents | None = None) -> None:
        self.record = events or AuthEvents(None)
        self.server = server
        self.metadata = metadata
        self.registrations = registrations

    def routes(self) -> list[Route]:
        return [
            Route("/.well-known/oauth-authorization-server", self.server_metadata, methods=["GET"]),
            Route("/.well-known/openid-configuration", self.server_metadata, methods=["GET"]),
            Route("/jwks.json", self.jwks, methods=["GET"]),
            Route("/token", self.token, methods=["POST"]),
            Route("/register", self.register, methods=["POST"]),
            Route("/revoke", functools.partial(self.endpoint, "revocation"), methods=["POST"]),
            Route("/introspect", functools.partial(self.endpoint, "introspection"), methods=["POST"]),
        ]

    async def server_metadata(self, _request: Request) -> Response:
        return JSONResponse(self.metadata, headers=PUBLIC_JSON)

    async def jwks(self, _request: Request) -> Response:
        return JSONResponse(self.server.keys.public_jwks(), headers=PUBLIC_JSON)

    async def token(self, request: Request) -> Response:
        try:
            oauth = await oauth_request(request, self.server.issuer)
            response = await self.server.respond(self.server.create_token_response, oauth)
        except OAuth2Error as error:
            return oauth_error(error)
        if response.status >= 400:  # a refused code, refresh token or client: worth watching for bursts
            error = response.body.get("error") if isinstance(response.body, dict) else None
            await self.record(request, EventKind.AUTH_FAILURE, str(error or "token_refused")[:64], stage="token",
                              client_id=(oauth.payload.client_id or "")[:2048] or None,
                              grant_type=str(oauth.payload.data.get("grant_type"))[:64])
        return to_starlette(response)

    async def register(self, request: Request) -> Response:
        address = address_key(request)
        try:
            json_req = await json_request(request, self.server.issuer)
        except OAuth2Error as error:
            return oauth_error(error)
        try:
            decision = await self.registrations.attempt(address)
        except RateLimitUnavailable:  # fail closed: no registration the throttle has not counted
            return JSONResponse({"error": "temporarily_unavailable", "error_description": "Try again shortly."}, 503,
                                headers={"retry-after": "1", **NO_STORE})
        if not decision.allowed:
            return JSONResponse({"error": "slow_down", "error_description": "Too many registrations."}, 429,
                                headers={"retry-after": decision.retry_after_header, **NO_STORE})
        response = await anyio.to_thread.run_sync(self.server.create_endpoint_response, "client_registration",
                                                  json_req)
        if response.status == 201 and isinstance(response.body, dict):
            await self.record(request, EventKind.CLIENT_REGISTERED, "registered",
                              client_id=response.body.get("client_id"), client_name=response.body.get("client_name"))
        return to_starlette(response)

    async def endpoint(self, name: str, request: Request) -> Response:
        try:
            oauth = await oauth_request(request, self.server.issuer)
            response = await self.server.respond(functools.partial(self.server.create_endpoint_response, name), oauth)
        except OAuth2Error as error:
            return oauth_error(error)
        return to_starlette(response)
