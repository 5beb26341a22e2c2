"""Assembles the HTTP application. The request path of every call, in order, in one place:

    HeadGuard                  before any of this, per connection (ops/protocol.py, given to uvicorn as its
                               http= protocol): the request head within its deadline (408) and size
                               (414 / 431), Content-Length with Transfer-Encoding refused (400, closed)
    ProxiedClientAddress       with --trusted-proxy only: the client address a listed proxy forwarded, for
                               every later step (ops/proxies.py)
    SecurityHeaders            nosniff, no-referrer, no framing, CSP, no-store, HSTS on every answer (ops/headers.py)
    RequestIdMiddleware        X-Request-ID on every answer and every log line of the request (logs/)
    RequestMetrics             counts and times every request (monitor/metrics.py)
    MetricsEndpoint            /metrics for loopback peers or the metrics token (monitor/scrape.py)
    HostOriginCheck            421 / 403: DNS-rebinding protection from the public URL, for every route
    Cors                       preflights (204 / 403) and Access-Control-* headers (ops/cors.py)
    RequestLimits              414 / 431 / 413 / 408: URL, headers, body size and time; the body is read
                               here, once (ops/limits.py)
      Starlette router
        /.well-known/oauth-protected-resource[/mcp]   RFC 9728 metadata
        /privacy                                      the privacy disclosure (privacy/page.py)
        /authorize /token /register ...               embedded authorization server (no --issuer)
        /mcp  McpGate          the one decision point (resource/gate.py): the body parsed once into a
                               typed call, then authenticate (401), authorize the tool's scopes
                               (403, or the Apps SDK tool-result form), admit the session (404),
                               spend the rate-limit budgets (429), screen the arguments (a tool
                               error; a body over 8 KiB in a worker thread); every refusal answered
                               there, before any SDK or author code
                MCP SDK        the session manager's handler: JSON-RPC over streamable HTTP, both eras;
                               it gets the canonical JSON of what the gate checked
                  guard_tool   around the author's function (guards/wrapper.py): the gate's decision
                               asserted, confirmation, tool.started, the run under the tool's deadline
                               (its HTTP requests only to the hosts it reaches=, network.py; its Owned
                               rows only the caller's, store/owned.py), output guards, tool.call

Host and Origin are checked once, by HostOriginCheck (the SDK's own check is off); the body is
read and bounded once, by RequestLimits (the SDK keeps only a backstop far above that bound).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager

import httpx
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp

from ringfence.app import App
from ringfence.audit.log import AuditLog
from ringfence.audit.schedule import CheckpointSchedule
from ringfence.authserver.login_providers import describe_sign_in, parse_login_providers, unsafe_admissions
from ringfence.authserver.pages import PRIVACY_PATH, stylesheet
from ringfence.authserver.service import AuthServerOptions, EmbeddedAuthServer
from ringfence.config import MCP_PATH, PRM_PATH, ConfigError, Settings
from ringfence.declaration import ToolSpec
from ringfence.events import Events
from ringfence.guards.output import unsafe_output_warnings
from ringfence.guards.screening import ArgumentScreen
from ringfence.logs.event_lines import EventLogObserver
from ringfence.logs.request_ids import RequestIdMiddleware
from ringfence.monitor.service import Monitoring, MonitoringOptions, describe_monitoring, thresholds_from
from ringfence.network import describe_reaches, loopback_reach_warnings
from ringfence.ops.cors import Cors
from ringfence.ops.hardening import HostOriginCheck
from ringfence.ops.headers import SecurityHeaders
from ringfence.ops.limits import RequestLimits
from ringfence.ops.proxies import behind_proxies, describe_proxies
from ringfence.ops.ratelimit import InProcessRateLimiter, RateLimiter
from ringfence.ops.ratelimit_redis import RedisRateLimiter
from ringfence.personal_data import PersonalData
from ringfence.policy import ScopeCatalog, ToolScopes, default_scopes, provider_access
from ringfence.privacy.disclosure import disclosure
from ringfence.privacy.page import privacy_page
from ringfence.privacy.purge import Purge, PurgeSchedule
from ringfence.privacy.subjects import SubjectData
from ringfence.resource.gate import McpGate
from ringfence.resource.metadata import metadata_endpoint, resource_metadata
from ringfence.resource.sessions import SessionLimits, SessionOwners, sdk_sessions
from ringfence.resource.tokens import TokenVerifier
from ringfence.resource.verification import ProviderOptions, build_verifier
from ringfence.runtime import check_confirmation_page, mcp_server_for
from ringfence.serving import serving
from ringfence.store.database import Database
from ringfence.store.pseudonyms import pseudonym_key
from ringfence.widgets import frame_warnings

logger = logging.getLogger("ringfence")


def embedded_auth_server(settings: Settings, database: Database, catalog: ScopeCatalog, *,
                         resources: frozenset[str], default: frozenset[str], name: str,
                         personal_data: Mapping[str, PersonalData] | None = None, tools: Iterable[ToolSpec] = (),
                         events: Events | None = None, limiter: RateLimiter | None = None) -> EmbeddedAuthServer:
    """The authorization server; its account pages export and delete what ``privacy`` finds about a person
    (ringfence's own records and the app's ``personal_data``); its consent page says what each scope lets
    the app's ``tools`` do; it keeps people's login-provider tokens for the tools that act there."""
    scope_text = {scope.name: scope.description for scope in catalog.scopes.values()}
    options = AuthServerOptions(
        issuer=settings.effective_issuer, https=settings.base_url.startswith("https://"), data_dir=settings.data_dir,
        allowed_redirect_uris=settings.allowed_redirect_uris,
        allow_loopback_redirect_uris=settings.allow_loopback_redirect_uris,
        allow_loopback_client_metadata=settings.allow_loopback_client_metadata,
        clock_leeway_seconds=settings.clock_leeway_seconds,
        login_providers=parse_login_providers(settings.login_providers),
        local_passwords=settings.local_passwords,
        http_timeout_seconds=settings.http_timeout_seconds,
    )
    return EmbeddedAuthServer(options, database, resources=resources, scope_text=scope_text,
                              default_scopes=default, app_name=name, events=events, limiter=limiter,
                              subjects=SubjectData(database, settings.data_dir, personal_data),
                              scope_unlocks=ToolScopes(catalog, tuple(tools)), provider_access=provider_access(tools))


def privacy_routes(app: App, settings: Settings) -> list[Route]:
    """The disclosure ``ringfence privacy`` writes, as a page (RFC 8414 op_policy_uri, RFC 9728
    resource_policy_uri); with the pages' stylesheet where no authorization server serves it."""
    page = privacy_page(disclosure(app, settings), app.title, account=settings.embedded_auth_server)
    routes = [Route(PRIVACY_PATH, page, methods=["GET"])]
    if not settings.embedded_auth_server:
        routes.append(Route("/static/ringfence.css", stylesheet, methods=["GET"]))
    return routes


def build_asgi(app: App, settings: Settings) -> ASGIApp:
    """The complete ASGI application serving ``app`` under ``settings``."""
    # The confirmation page needs sign-in, which only the embedded authorization server offers.
    confirm_page_url = settings.base_url + "/confirm/" if settings.embedded_auth_server else None
    check_confirmation_page(app, confirm_page_url)
    database = Database(settings.resolved_database_url)
    events, monitoring = observed_events(settings, database, app.tools)
    routes: list[Route] = []
    auth: EmbeddedAuthServer | None = None
    limiter = rate_limiter(settings)  # tool calls, and the sign-in and registration throttles
    if settings.embedded_auth_server:
        auth = embedded_auth_server(settings, database, app.catalog, resources=frozenset({settings.resource_url}),
                                    default=default_scopes(app.tools.values()), name=app.title,
                                    personal_data=app.personal_data_declarations, tools=app.tools.values(),
                                    events=events, limiter=limiter)
        routes += auth.routes()
    elif acting := sorted(provider_access(app.tools.values())):
        raise ConfigError(f"the app's tools act at login provider {', '.join(acting)} (provider_scopes=), which "
                          "needs the embedded authorization server and --login-provider (serve without --issuer)")
    mcp_server = mcp_server_for(app, confirm_page_url, events, auth.provider_tokens if auth is not None else None)
    mcp_server.streamable_http_app(  # builds the session manager; its Starlette wrapper is not used
        streamable_http_path=MCP_PATH,
        # A backstop only: RequestLimits bounds the client's body. The gate's canonical JSON of it can
        # be longer, never five times (1e15 is written 1000000000000000.0).
        max_request_body_size=5 * settings.max_body_bytes,
        max_sessions=settings.max_sessions,  # the gate keeps within it, with room for signed-in sessions
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    http_client = httpx.AsyncClient(timeout=settings.http_timeout_seconds, follow_redirects=False)
    verifier: TokenVerifier = (auth.verifier(settings.resource_url) if auth is not None
                               else build_verifier(provider_options(settings), http_client))
    screen = ArgumentScreen(app.tools)
    gate = McpGate(mcp_server.session_manager.handle_request, verifier=verifier, tools=app.tools,
                   catalog=app.catalog, screen=screen, limiter=limiter, rate_limits=app.rate_limits,
                   resource_metadata_url=settings.resource_metadata_url, refusal_style=settings.refusal_style,
                   sessions=SessionOwners(sdk_sessions(mcp_server.session_manager), session_limits(settings)),
                   max_token_bytes=settings.max_token_bytes, events=events)
    metadata = metadata_endpoint(resource_metadata(settings.resource_url, settings.effective_issuer, app.catalog,
                                                   app.title, settings.base_url + PRIVACY_PATH))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await database.start()
        await screen.load(mcp_server)
        if auth is not None:
            await auth.start()
        purge = purge_schedule(settings, database, auth, app.personal_data_declarations)
        purge.start()
        checkpoints = audit_checkpoints(settings, events)
        checkpoints.start()
        try:
            with serving(app, database):  # the app's tools and hooks use it from here on
                async with mcp_server.session_manager.run():
                    yield
        finally:
            await checkpoints.stop()
            await purge.stop()
            if auth is not None:
                await auth.close()
            if isinstance(limiter, RedisRateLimiter):
                await limiter.aclose()
            await monitoring.close()
            await http_client.aclose()
            await database.close()

    routes = [  # the MCP endpoint first: nearly every request is for it, and the router tries routes in order
        Route(MCP_PATH, gate),
        Route(PRM_PATH, metadata, methods=["GET"]),
        Route(PRM_PATH + MCP_PATH, metadata, methods=["GET"]),
        *routes,
        *privacy_routes(app, settings),
    ]
    # Request metrics outermost (every answer counted, 421s too), then /metrics, then the Host check.
    # Request IDs outermost of all: every answer and every log line of a request carries one.
    # Security headers outermost of all: every answer gets them, whoever wrote it.
    return outermost(monitoring.wrap(hardened(Starlette(routes=routes, lifespan=lifespan), settings), routes),
                     settings)


def outermost(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Security headers on every answer, whoever wrote it; inside them a request id for every answer
    and every log line of the request. Outside them all, the client address behind trusted proxies."""
    secured = SecurityHeaders(RequestIdMiddleware(app), https=settings.base_url.startswith("https://"))
    return behind_proxies(secured, settings.trusted_proxies, settings.trusted_proxy_header)


def hardened(app: ASGIApp, settings: Settings) -> ASGIApp:
    """The HTTP checks every route shares: Host and Origin, then CORS, then request limits."""
    metadata_url = settings.resource_metadata_url
    origins = settings.allowed_origin_headers()
    limited = RequestLimits(app, max_url_bytes=settings.max_url_bytes, max_header_bytes=settings.max_header_bytes,
                            max_body_bytes=settings.max_body_bytes, body_timeout_seconds=settings.body_timeout_seconds,
                            metadata_url=metadata_url)
    cors = Cors(limited, origins=origins, metadata_url=metadata_url)
    return HostOriginCheck(cors, hosts=settings.allowed_host_headers(), origins=origins, metadata_url=metadata_url)


def provider_options(settings: Settings) -> ProviderOptions:
    """The external identity provider that ``--issuer`` names."""
    assert settings.issuer is not None
    return ProviderOptions(
        issuer=settings.issuer, audience=settings.expected_audience, algorithms=settings.algorithms,
        clock_leeway_seconds=settings.clock_leeway_seconds, jwks_url=settings.jwks_url,
        jwks_cache_seconds=settings.jwks_cache_seconds,
        jwks_refresh_interval_seconds=settings.jwks_refresh_interval_seconds,
        introspection_url=settings.introspection_url, introspection_client_id=settings.introspection_client_id,
        introspection_client_secret=settings.introspection_client_secret,
    )


def session_limits(settings: Settings) -> SessionLimits:
    """The limits ``serve`` was given (``RINGFENCE_MAX_SESSIONS`` and the like; config.py checks they nest)."""
    return SessionLimits(total=settings.max_sessions, anonymous=settings.max_anonymous_sessions,
                         anonymous_per_address=settings.max_anonymous_sessions_per_address,
                         per_principal=settings.max_sessions_per_principal)


def monitoring_options(settings: Settings) -> MonitoringOptions:
    """Metrics and alerts as ``serve`` was told (``RINGFENCE_METRICS*``, ``RINGFENCE_ALERT_*``)."""
    return MonitoringOptions(
        metrics=settings.metrics, metrics_token=settings.metrics_token, base_url=settings.base_url,
        hosts=settings.allowed_host_headers(), thresholds=thresholds_from(settings),
        alert_cooldown_seconds=settings.alert_cooldown_seconds, alert_max_tracked_keys=settings.alert_max_tracked_keys,
        alert_webhook_url=settings.alert_webhook_url, alert_webhook_secret=settings.alert_webhook_secret,
        alert_webhook_timeout_seconds=settings.alert_webhook_timeout_seconds,
        alert_webhook_retries=settings.alert_webhook_retries,
    )


def security_events(settings: Settings, database: Database) -> Events:
    """Where security events go: the audit log in ``database``, plus observers added later."""
    return Events(AuditLog(database, settings.data_dir), pseudonym_key(settings.data_dir))


def audit_checkpoints(settings: Settings, events: Events) -> CheckpointSchedule:
    """Signed audit checkpoints every N records or M seconds, in the background (audit/schedule.py)."""
    assert events.audit is not None, "security_events always has an audit log"
    return CheckpointSchedule(events.audit, every=settings.audit_checkpoint_records,
                              interval=settings.audit_checkpoint_seconds)


def purge_schedule(settings: Settings, database: Database, auth: EmbeddedAuthServer | None,
                   declarations: Mapping[str, PersonalData] | None = None) -> PurgeSchedule:
    """The purge every ``purge_interval_minutes``; where tools act at a login provider, with the sweep of the
    provider tokens of accounts that connected no app within the hour (provider_tokens.py)."""
    tokens = auth.provider_tokens if auth is not None else None
    return PurgeSchedule(Purge(database, settings.data_dir, settings, declarations),
                         interval=settings.purge_interval_minutes * 60,
                         sweeps=[tokens.forget_unconnected] if tokens is not None else [])


def observed_events(settings: Settings, database: Database,
                    tools: Mapping[str, ToolSpec]) -> tuple[Events, Monitoring]:
    """The events, each also written as one log line and watched by the metrics and detectors."""
    events = security_events(settings, database)
    events.add_observer(EventLogObserver())
    return events, Monitoring(monitoring_options(settings), tools, events)


def rate_limiter(settings: Settings) -> RateLimiter:
    """Budgets in Redis when several instances share them, else in this process."""
    if settings.redis_url:
        return RedisRateLimiter.from_url(settings.redis_url)
    return InProcessRateLimiter()


def build_auth_server_asgi(settings: Settings, catalog: ScopeCatalog, *, resources: frozenset[str],
                           default: frozenset[str]) -> ASGIApp:
    """``ringfence auth-server``: the authorization server alone, for resource servers elsewhere."""
    database = Database(settings.resolved_database_url)
    limiter = rate_limiter(settings)
    events, monitoring = observed_events(settings, database, {})
    auth = embedded_auth_server(settings, database, catalog, resources=resources, default=default,
                                name="ringfence", events=events, limiter=limiter)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await database.start()
        await auth.start()
        purge = purge_schedule(settings, database, auth)
        purge.start()
        checkpoints = audit_checkpoints(settings, events)
        checkpoints.start()
        try:
            yield
        finally:
            await checkpoints.stop()
            await purge.stop()
            await auth.close()
            if isinstance(limiter, RedisRateLimiter):
                await limiter.aclose()
            await monitoring.close()
            await database.close()

    # What this server keeps (accounts, grants, tokens, audit), published as its op_policy_uri.
    routes = [*auth.routes(), *privacy_routes(App("ringfence", scopes=catalog.scopes.values()), settings)]
    return outermost(monitoring.wrap(hardened(Starlette(routes=routes, lifespan=lifespan), settings), routes),
                     settings)


def describe_login_providers(settings: Settings) -> tuple[list[str], list[str]]:
    """Start-up lines: where people sign in and who may; and what of that gives up a protection."""
    providers = parse_login_providers(settings.login_providers)
    return describe_sign_in(providers, local_passwords=settings.local_passwords), unsafe_admissions(providers)


def describe_startup(app: App, settings: Settings) -> list[str]:
    """What the operator must know at start-up, one line each."""
    lines = [f"serving {app.name!r} at {settings.resource_url}"]
    if settings.embedded_auth_server:
        lines.append(f"embedded authorization server at {settings.effective_issuer} (sign-in at /login)")
        sign_in, unsafe_sign_in = describe_login_providers(settings)
        lines += sign_in
        lines += [f"tools act as the signed-in person at login provider {provider} with {' '.join(sorted(scopes))}: "
                  "people's tokens there are kept sealed under provider-tokens.key"
                  for provider, scopes in sorted(provider_access(app.tools.values()).items())]
    else:
        unsafe_sign_in = []
        lines.append(f"trusting access tokens from issuer {settings.issuer} for audience {settings.expected_audience}")
        if settings.issuer and settings.issuer.endswith("/"):
            lines.append("warning: the issuer ends with '/': some MCP clients strip it and then reject the metadata")
    if settings.redis_url:
        lines.append("rate-limit budgets shared through Redis")
    lines += describe_proxies(settings.trusted_proxies, settings.trusted_proxy_header)
    if settings.refusal_style != "auto":
        lines.append(f"tool refusals are answered as {settings.refusal_style}")
    lines += describe_monitoring(monitoring_options(settings))
    lines += describe_reaches(app.tools.values())
    unsafe = [*settings.unsafe_options(), *unsafe_sign_in, *frame_warnings(app.widgets.values()),
              *unsafe_output_warnings(app.tools.values()), *loopback_reach_warnings(app.tools.values())]
    lines += [f"UNSAFE option enabled: {line}" for line in unsafe]
    return lines

