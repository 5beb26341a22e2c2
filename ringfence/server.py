"""Assembles the HTTP application: the request path of every call, in order, in one place.

    HostOriginCheck            421 / 403: DNS-rebinding protection from the public URL
      Starlette router
        /.well-known/oauth-protected-resource[/mcp]   RFC 9728 metadata
        /authorize /token /register ...               embedded authorization server (no --issuer)
        /mcp  McpGate          400 / 401 / 403 / 413 / 503: credentials, body, per-tool scopes,
                               then 429: rate limits, then argument screening (a tool error)
                MCP SDK        streamable HTTP, both protocol eras
                  guard_tool   per-call checks around the author's function
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp

from ringfence.app import App
from ringfence.authserver.service import EmbeddedAuthServer
from ringfence.config import MCP_PATH, PRM_PATH, Settings
from ringfence.guards.screening import ArgumentScreen
from ringfence.ops.hardening import HostOriginCheck
from ringfence.ops.ratelimit import InProcessRateLimiter, RateLimiter
from ringfence.ops.ratelimit_redis import RedisRateLimiter
from ringfence.policy import ScopeCatalog, default_scopes
from ringfence.resource.gate import McpGate
from ringfence.resource.metadata import metadata_endpoint, resource_metadata
from ringfence.resource.tokens import TokenVerifier
from ringfence.resource.verification import build_verifier
from ringfence.store.database import Database

logger = logging.getLogger("ringfence")


def embedded_auth_server(settings: Settings, database: Database, catalog: ScopeCatalog, *,
                         resources: frozenset[str], default: frozenset[str], name: str) -> EmbeddedAuthServer:
    scope_text = {scope.name: scope.description for scope in catalog.scopes.values()}
    return EmbeddedAuthServer(settings, database, resources=resources, scope_text=scope_text,
                              default_scopes=default, app_name=name)


def build_asgi(app: App, settings: Settings) -> ASGIApp:
    """The complete ASGI application serving ``app`` under ``settings``."""
    # The confirmation page needs sign-in, which only the embedded authorization server offers.
    confirm_page_url = settings.base_url + "/confirm/" if settings.embedded_auth_server else None
    mcp_server = app.mcp_server(settings.resource_metadata_url, confirm_page_url)
    sdk_app = mcp_server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        max_request_body_size=settings.max_body_bytes,
        transport_security=TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=sorted(settings.allowed_host_headers()),
            allowed_origins=sorted(settings.allowed_origin_headers()),
        ),
    )
    http_client = httpx.AsyncClient(timeout=settings.http_timeout_seconds, follow_redirects=False)
    database = Database(settings.resolved_database_url)
    routes: list[Route] = []
    auth: EmbeddedAuthServer | None = None
    verifier: TokenVerifier
    if settings.embedded_auth_server:
        auth = embedded_auth_server(settings, database, app.catalog, resources=frozenset({settings.resource_url}),
                                    default=default_scopes(app.tools.values()), name=app.title)
        verifier = auth.verifier(settings.resource_url)
        routes += auth.routes()
    else:
        verifier = build_verifier(settings, http_client)
    screen = ArgumentScreen(app.tools)
    limiter = rate_limiter(settings)
    gate = McpGate(sdk_app, settings=settings, verifier=verifier, tools=app.tools, catalog=app.catalog,
                   screen=screen, limiter=limiter, rate_limits=app.rate_limits)
    metadata = metadata_endpoint(resource_metadata(settings, app.catalog, app.title))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await database.start()
        await screen.load(mcp_server)
        if auth is not None:
            await auth.start()
        app.attach_database(database)
        try:
            async with mcp_server.session_manager.run():
                yield
        finally:
            app.attach_database(None)
            if auth is not None:
                await auth.close()
            if isinstance(limiter, RedisRateLimiter):
                await limiter.aclose()
            await http_client.aclose()
            await database.close()

    routes += [
        Route(PRM_PATH, metadata, methods=["GET"]),
        Route(PRM_PATH + MCP_PATH, metadata, methods=["GET"]),
        Route(MCP_PATH, gate),
    ]
    return HostOriginCheck(Starlette(routes=routes, lifespan=lifespan), settings)


def rate_limiter(settings: Settings) -> RateLimiter:
    """Budgets in Redis when several instances share them, else in this process."""
    if settings.redis_url:
        return RedisRateLimiter.from_url(settings.redis_url)
    return InProcessRateLimiter()


def build_auth_server_asgi(settings: Settings, catalog: ScopeCatalog, *, resources: frozenset[str],
                           default: frozenset[str]) -> ASGIApp:
    """``ringfence auth-server``: the authorization server alone, for resource servers elsewhere."""
    database = Database(settings.resolved_database_url)
    auth = embedded_auth_server(settings, database, catalog, resources=resources, default=default,
                                name="ringfence")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await database.start()
        await auth.start()
        try:
            yield
        finally:
            await auth.close()
            await database.close()

    return HostOriginCheck(Starlette(routes=auth.routes(), lifespan=lifespan), settings)


def describe_startup(app: App, settings: Settings) -> list[str]:
    """What the operator must know at start-up, one line each."""
    lines = [f"serving {app.name!r} at {settings.resource_url}"]
    if settings.embedded_auth_server:
        lines.append(f"embedded authorization server at {settings.effective_issuer} (sign-in at /login)")
    else:
        lines.append(f"trusting access tokens from issuer {settings.issuer} for audience {settings.expected_audience}")
        if settings.issuer and settings.issuer.endswith("/"):
            lines.append("warning: the issuer ends with '/': some MCP clients strip it and then reject the metadata")
    if settings.redis_url:
        lines.append("rate-limit budgets shared through Redis")
    if settings.refusal_style != "auto":
        lines.append(f"tool refusals are answered as {settings.refusal_style}")
    lines += [f"UNSAFE option enabled: {line}" for line in settings.unsafe_options()]
    return lines

