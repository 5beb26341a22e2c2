"""The ``ringfence`` command."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ringfence import __version__
from ringfence.cli.accounts import keys_cli, users_cli
from ringfence.cli.audit import checkpoint as audit_checkpoint
from ringfence.cli.audit import show as audit_show
from ringfence.cli.audit import verify as audit_verify
from ringfence.cli.db import db_cli
from ringfence.cli.detect import detect, redact
from ringfence.cli.options import fail
from ringfence.cli.preflight import review
from ringfence.cli.preview import preview
from ringfence.cli.privacy import privacy, purge, user_cli
from ringfence.cli.qa import qa_cli
from ringfence.cli.review import lint, lock
from ringfence.cli.scan import scan

if TYPE_CHECKING:
    from ringfence.config import Settings

# Each command imports what it runs inside its body: `ringfence --help` and `ringfence redact`
# start without the MCP SDK, SQLAlchemy or pydantic (bench/cli_start.py measures it).

cli = typer.Typer(
    name="ringfence",
    help="Secure-by-default MCP servers and ChatGPT apps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts contain "[env …]", which Rich would read as markup
)
logger = logging.getLogger("ringfence")


RedirectUriOption = Annotated[
    list[str] | None,
    typer.Option(help="Redirect URI registered clients may use (repeatable; {name} = one path segment). "
                      "Default: ChatGPT's, plus loopback."),
]
LoopbackMetadataOption = Annotated[
    bool | None,
    typer.Option("--allow-loopback-client-metadata",
                 help="UNSAFE outside development: fetch client metadata documents from loopback addresses."),
]
LoginProviderOption = Annotated[
    list[str] | None,
    typer.Option(help="Where people sign in: 'issuer=https://idp.example.com,client-id=ID,client-secret-file=PATH,"
                      "allowed-domain=example.com' for an OpenID provider, or 'github,client-id=…' (repeatable; "
                      "README: Sign in with your identity provider). [env RINGFENCE_LOGIN_PROVIDERS, a JSON list]"),
]
LocalPasswordsOption = Annotated[
    bool | None,
    typer.Option("--local-passwords/--no-local-passwords",
                 help="Offer username and password sign-in besides the login providers. "
                      "[env RINGFENCE_LOCAL_PASSWORDS; default on]"),
]
RedisOption = Annotated[
    str | None,
    typer.Option(help="Redis for rate limits and sign-in throttles shared by instances. [env RINGFENCE_REDIS_URL]"),
]
TrustedProxyOption = Annotated[
    list[str] | None,
    typer.Option(help="Address or network (CIDR) of a reverse proxy whose forwarding header names the client "
                      "(repeatable). Default: none, forwarding headers ignored. [env RINGFENCE_TRUSTED_PROXIES]"),
]
TrustedProxyHeaderOption = Annotated[
    str | None,
    typer.Option(help="The header your proxies write: x-forwarded-for or forwarded (RFC 7239); the other is "
                      "ignored. [env RINGFENCE_TRUSTED_PROXY_HEADER; default x-forwarded-for]"),
]
LogLevelOption = Annotated[str, typer.Option(help="debug, info, warning or error.")]
LogFormatOption = Annotated[
    str | None, typer.Option(help="json (one object per line) or text (readable). [env RINGFENCE_LOG_FORMAT; "
                                  "default text on a terminal, else json]")
]
LogFileOption = Annotated[
    Path | None, typer.Option(help="Also write the log to this file, rotated daily. [env RINGFENCE_LOG_FILE]")
]
LogRetentionOption = Annotated[
    int | None, typer.Option(help="Rotated log files kept, one a day. [env RINGFENCE_LOG_RETENTION_DAYS; default 30]")
]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ringfence {__version__}")
        raise typer.Exit()


@cli.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Secure-by-default MCP servers and ChatGPT apps."""


@cli.command()
def serve(
    target: Annotated[str, typer.Argument(help="The app: path/to/app.py[:attr] or package.module[:attr].")],
    host: Annotated[str | None, typer.Option(help="Address to bind. [env RINGFENCE_HOST; default 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind. [env RINGFENCE_PORT; default 8000]")] = None,
    public_url: Annotated[
        str | None, typer.Option(help="Origin clients use, e.g. https://mcp.example.com. [env RINGFENCE_PUBLIC_URL]")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder. [env RINGFENCE_DATA_DIR]")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL; default SQLite in the data folder. [env RINGFENCE_DATABASE_URL]")
    ] = None,
    issuer: Annotated[str | None, typer.Option(help="Trusted token issuer. [env RINGFENCE_ISSUER]")] = None,
    jwks_url: Annotated[str | None, typer.Option(help="Issuer's JWKS URL. [env RINGFENCE_JWKS_URL]")] = None,
    introspection_url: Annotated[
        str | None, typer.Option(help="RFC 7662 endpoint for opaque tokens. [env RINGFENCE_INTROSPECTION_URL]")
    ] = None,
    introspection_client_id: Annotated[
        str | None, typer.Option(help="Client id for introspection. [env RINGFENCE_INTROSPECTION_CLIENT_ID]")
    ] = None,
    audience: Annotated[
        str | None, typer.Option(help="Expected token audience; default the MCP endpoint URL. [env RINGFENCE_AUDIENCE]")
    ] = None,
    allowed_host: Annotated[
        list[str] | None, typer.Option(help="Extra Host header value to accept (repeatable).")
    ] = None,
    allowed_origin: Annotated[
        list[str] | None, typer.Option(help="Extra browser Origin allowed to call /mcp, /token, /register and "
                                            "/revoke (a browser-based client's; CORS; repeatable).")
    ] = None,
    refusal_style: Annotated[
        str | None, typer.Option(help="auto | http | tool-result. [env RINGFENCE_REFUSAL_STYLE]")
    ] = None,
    allowed_redirect_uri: RedirectUriOption = None,
    allow_loopback_client_metadata: LoopbackMetadataOption = None,
    login_provider: LoginProviderOption = None,
    local_passwords: LocalPasswordsOption = None,
    redis_url: RedisOption = None,
    trusted_proxy: TrustedProxyOption = None,
    trusted_proxy_header: TrustedProxyHeaderOption = None,
    alert_webhook_url: Annotated[
        str | None, typer.Option(help="POST suspicious-activity alerts here (https). [env RINGFENCE_ALERT_WEBHOOK_URL]")
    ] = None,
    metrics: Annotated[
        bool | None, typer.Option("--metrics/--no-metrics", help="Serve /metrics. [env RINGFENCE_METRICS; default on]")
    ] = None,
    log_level: LogLevelOption = "info",
    log_format: LogFormatOption = None,
    log_file: LogFileOption = None,
    log_retention_days: LogRetentionOption = None,
) -> None:
    """Serve an app over streamable HTTP at PUBLIC_URL/mcp.

    Without --issuer, an embedded OAuth 2.1 authorization server runs on the same origin.
    """
    from ringfence.config import ConfigError, Settings
    from ringfence.declaration import DeclarationError
    from ringfence.loader import LoadError, load_app
    from ringfence.server import build_asgi, describe_startup
    from ringfence.widgets import check_widgets

    try:
        settings = Settings.load(
            host=host,
            port=port,
            public_url=public_url,
            data_dir=data_dir,
            database_url=database_url,
            issuer=issuer,
            jwks_url=jwks_url,
            introspection_url=introspection_url,
            introspection_client_id=introspection_client_id,
            audience=audience,
            allowed_hosts=tuple(allowed_host) if allowed_host else None,
            allowed_origins=tuple(allowed_origin) if allowed_origin else None,
            refusal_style=refusal_style,
            allowed_redirect_uris=tuple(allowed_redirect_uri) if allowed_redirect_uri else None,
            allow_loopback_client_metadata=allow_loopback_client_metadata,
            login_providers=tuple(login_provider) if login_provider else None,
            local_passwords=local_passwords,
            redis_url=redis_url,
            trusted_proxies=tuple(trusted_proxy) if trusted_proxy else None,
            trusted_proxy_header=trusted_proxy_header,
            alert_webhook_url=alert_webhook_url,
            metrics=metrics,
            log_format=log_format,
            log_file=log_file,
            log_retention_days=log_retention_days,
        )
        start_logging(log_level, settings, keyed=False)  # options checked; nothing written yet
        app = load_app(target)
        check_widgets(app.widgets, app.tools)  # before anything is written
        probe_database(settings)  # the first write: the data folder and the database
        start_logging(log_level, settings)
        private_data(settings)
        asgi = build_asgi(app, settings)
    except (ConfigError, DeclarationError, LoadError) as exc:
        fail(str(exc))
    except Exception as exc:  # an error in the app's own module: one line, not a traceback
        fail(f"cannot load {target}: {type(exc).__name__}: {exc}")
    for line in describe_startup(app, settings):
        logger.info(line)
    run_server(asgi, settings, log_level)


@cli.command("auth-server")
def auth_server(
    resource: Annotated[
        list[str], typer.Option(help="Canonical URL of a resource server (MCP endpoint) to issue tokens for.")
    ],
    scopes_from: Annotated[
        list[str], typer.Option(help="An app (path/to/app.py or module:attr) whose declared scopes to offer.")
    ],
    host: Annotated[str | None, typer.Option(help="Address to bind. [env RINGFENCE_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind. [env RINGFENCE_PORT]")] = None,
    public_url: Annotated[str | None, typer.Option(help="The issuer URL. [env RINGFENCE_PUBLIC_URL]")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data folder. [env RINGFENCE_DATA_DIR]")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL. [env RINGFENCE_DATABASE_URL]")] = None,
    allowed_redirect_uri: RedirectUriOption = None,
    allow_loopback_client_metadata: LoopbackMetadataOption = None,
    login_provider: LoginProviderOption = None,
    local_passwords: LocalPasswordsOption = None,
    allowed_origin: Annotated[
        list[str] | None, typer.Option(help="Browser Origin allowed to call /token, /register and /revoke "
                                            "(a browser-based client's; CORS; repeatable).")
    ] = None,
    redis_url: RedisOption = None,
    trusted_proxy: TrustedProxyOption = None,
    trusted_proxy_header: TrustedProxyHeaderOption = None,
    log_level: LogLevelOption = "info",
    log_format: LogFormatOption = None,
    log_file: LogFileOption = None,
    log_retention_days: LogRetentionOption = None,
) -> None:
    """Run the authorization server alone, for resource servers started with --issuer PUBLIC_URL."""
    from ringfence.config import ConfigError, Settings, check_resource_url
    from ringfence.declaration import DeclarationError
    from ringfence.loader import LoadError, load_app
    from ringfence.monitor.service import describe_monitoring
    from ringfence.ops.proxies import describe_proxies
    from ringfence.policy import ScopeCatalog, default_scopes
    from ringfence.server import build_auth_server_asgi, describe_login_providers, monitoring_options

    try:
        settings = Settings.load(
            host=host, port=port, public_url=public_url, data_dir=data_dir, database_url=database_url,
            allowed_redirect_uris=tuple(allowed_redirect_uri) if allowed_redirect_uri else None,
            allow_loopback_client_metadata=allow_loopback_client_metadata,
            login_providers=tuple(login_provider) if login_provider else None, local_passwords=local_passwords,
            allowed_origins=tuple(allowed_origin) if allowed_origin else None, redis_url=redis_url,
            trusted_proxies=tuple(trusted_proxy) if trusted_proxy else None, trusted_proxy_header=trusted_proxy_header,
            log_format=log_format, log_file=log_file, log_retention_days=log_retention_days,
        )
        start_logging(log_level, settings, keyed=False)  # options checked; nothing written yet
        for url in resource:
            check_resource_url(url)
        apps = [load_app(target) for target in scopes_from]
        scopes = {scope.name: scope for app in apps for scope in app.catalog.scopes.values()}
        catalog = ScopeCatalog(scopes.values())
        defaults = default_scopes(tool for app in apps for tool in app.tools.values())
        probe_database(settings)  # the first write: the data folder and the database
        start_logging(log_level, settings)
        private_data(settings)
        asgi = build_auth_server_asgi(settings, catalog, resources=frozenset(resource), default=defaults)
    except (ConfigError, DeclarationError, LoadError) as exc:
        fail(str(exc))
    logger.info("authorization server %s issuing tokens for %s", settings.base_url, ", ".join(resource))
    sign_in, unsafe_sign_in = describe_login_providers(settings)
    for line in [*sign_in, *describe_proxies(settings.trusted_proxies, settings.trusted_proxy_header),
                 *describe_monitoring(monitoring_options(settings))]:
        logger.info(line)
    for line in [*settings.unsafe_options(), *unsafe_sign_in]:
        logger.warning("UNSAFE option enabled: %s", line)
    run_server(asgi, settings, log_level)


def probe_database(settings: Settings) -> None:
    """Open the database (creating the data folder and tables) before serving, so that a bad URL or
    an unwritable folder stops start-up with one line instead of a server that cannot answer."""
    import asyncio

    from ringfence.config import ConfigError
    from ringfence.store.database import Database

    async def probe() -> None:
        database = Database(settings.resolved_database_url)
        try:
            await database.start()
        finally:
            await database.close()

    try:
        asyncio.run(probe())
    except ConfigError:
        raise
    except Exception as exc:  # the driver's own error type varies; its message may hold the URL, so omit it
        problem = type(exc).__name__
        raise ConfigError(f"cannot open the database ({problem}); check --database-url and --data-dir") from None


def private_data(settings: Settings) -> None:
    """The data folder and the SQLite files readable by their owner only (ringfence/store/private.py):
    what an earlier version or another tool left readable by others is tightened, with a warning."""
    from ringfence.store.database import Database
    from ringfence.store.private import tighten

    sqlite = Database(settings.resolved_database_url).sqlite_file
    files = [] if sqlite is None else [sqlite, sqlite.with_name(sqlite.name + "-wal"),
                                       sqlite.with_name(sqlite.name + "-shm")]
    changed = tighten(settings.data_dir, *files)
    if changed:
        logger.warning("made %d files and folders private to this account (folders 0700, files 0600); other "
                       "accounts could read them, e.g. %s", len(changed), changed[0])


def start_logging(level: str, settings: Settings, *, keyed: bool = True) -> None:
    """Every logger through the one redacting pipeline (ringfence/logs), as the settings say.

    Not ``keyed``: nothing is written (no pseudonym key, no log file), so that a start refused
    before the app is loaded leaves no trace; values are then redacted to their type."""
    from ringfence.logs.configuration import check_log_file, configure_logging

    if not keyed and settings.log_file is not None:
        check_log_file(settings.log_file)
    configure_logging(level, format=settings.log_format, data_dir=settings.data_dir if keyed else None,
                      log_file=settings.log_file if keyed else None, retention_days=settings.log_retention_days)


# Objects a collection of the youngest generation waits for (CPython's default: 700). See settle_heap.
YOUNG_COLLECTION_THRESHOLD = 5_000


def settle_heap() -> None:
    """Set the garbage collector up for serving, once start-up is done.

    What start-up built (modules, schemas, detectors, the app) lives as long as the process: it is
    frozen out of every later collection, so that a full one scans only what requests made (about a
    tenth less CPU per call with 32 clients, bench/run). A tool call allocates a few thousand
    objects, nearly all freed by reference counting as the call ends; at CPython's default threshold
    the youngest generation is collected about once a call, mid-call, tracing what the call holds
    (measured in-process, bench/calls/inprocess_call.py: 280-330 µs of collection per search call at
    700, 60-80 µs at 5,000). Raising it only delays the freeing of reference cycles, by at most 5,000
    allocations; a collection then takes a few milliseconds, once every dozen calls or so.
    """
    import gc

    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)


def run_server(asgi: object, settings: Settings, log_level: str) -> None:
    import uvicorn

    from ringfence.ops.protocol import uvicorn_options

    settle_heap()
    uvicorn.run(
        asgi,  # type: ignore[arg-type]
        host=settings.host,
        port=settings.port,
        log_level=log_level.lower(),
        log_config=None,  # keep the logging set up by start_logging: uvicorn's own would bypass redaction
        server_header=False,
        proxy_headers=False,
        lifespan="on",
        # head deadline and size, keep-alive, graceful shutdown (ops/protocol.py)
        **uvicorn_options(header_timeout_seconds=settings.header_timeout_seconds,
                          max_header_bytes=settings.max_header_bytes, keep_alive_seconds=settings.keep_alive_seconds,
                          shutdown_timeout_seconds=settings.shutdown_timeout_seconds,
                          https=settings.base_url.startswith("https://")),
    )


# Detectors: filters for existing logs and QA's injection prompts ---------------------------------

cli.command(help="Redact PII and secrets from standard input (text, or JSON lines with --jsonl).")(redact)
cli.command(help="Scan standard input for prompt injection; exit 1 when found.")(detect)
cli.command()(lint)
cli.command()(review)
cli.command()(lock)
cli.command()(scan)
cli.command()(preview)


# Sub-commands owned by their packages ---------------------------------------------------------------

audit_cli = typer.Typer(help="Check and read the tamper-evident audit log.", no_args_is_help=True,
                        rich_markup_mode=None)
audit_cli.command("verify")(audit_verify)
audit_cli.command("show")(audit_show)
audit_cli.command("checkpoint")(audit_checkpoint)
cli.add_typer(users_cli, name="users")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(audit_cli, name="audit")
cli.add_typer(db_cli, name="db")
cli.add_typer(user_cli, name="user")
cli.add_typer(qa_cli, name="qa")
cli.command()(purge)
cli.command()(privacy)


def main() -> None:
    cli()
