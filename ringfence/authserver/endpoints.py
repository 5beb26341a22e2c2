"""The OAuth protocol endpoints: metadata, keys, token, registration, revocation, introspection."""

from __future__ import annotations

import functools

import anyio.to_thread
from authlib.oauth2.rfc6749 import OAuth2Error
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ringfence.authserver.adapter import json_request, oauth_request, to_starlette
from ringfence.authserver.oauth import McpAuthorizationServer
from ringfence.authserver.throttle import SlidingWindow

PUBLIC_JSON = {"cache-control": "public, max-age=300", "access-control-allow-origin": "*"}
NO_STORE = {"cache-control": "no-store", "access-control-allow-origin": "*"}


def oauth_error(error: OAuth2Error) -> Response:
    status, body, headers = error()
    return JSONResponse(body, status, headers={**dict(headers), **NO_STORE})


class ProtocolEndpoints:
    def __init__(self, server: McpAuthorizationServer, metadata: dict, *, registrations: SlidingWindow) -> None:
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
        except OAuth2Error as error:
            return oauth_error(error)
        response = await anyio.to_thread.run_sync(self.server.create_token_response, oauth)
        return _cors(to_starlette(response))

    async def register(self, request: Request) -> Response:
        address = f"ip:{request.client.host if request.client else 'unknown'}"
        retry = self.registrations.retry_after(address)
        if retry is not None:
            return JSONResponse({"error": "slow_down", "error_description": "Too many registrations."}, 429,
                                headers={"retry-after": str(retry), **NO_STORE})
        try:
            json_req = await json_request(request, self.server.issuer)
        except OAuth2Error as error:
            return oauth_error(error)
        self.registrations.record(address)
        response = await anyio.to_thread.run_sync(self.server.create_endpoint_response, "client_registration",
                                                  json_req)
        return _cors(to_starlette(response))

    async def endpoint(self, name: str, request: Request) -> Response:
        try:
            oauth = await oauth_request(request, self.server.issuer)
        except OAuth2Error as error:
            return oauth_error(error)
        response = await anyio.to_thread.run_sync(self.server.create_endpoint_response, name, oauth)
        return _cors(to_starlette(response))


def _cors(response: Response) -> Response:
    """Browser-based MCP clients call these endpoints cross-origin; they carry no cookies."""
    response.headers["access-control-allow-origin"] = "*"
    return response
