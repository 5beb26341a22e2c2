"""The ``ringfence`` command."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import uvicorn

from ringfence.config import ConfigError, Settings
from ringfence.declaration import DeclarationError
from ringfence.loader import LoadError, load_app

cli = typer.Typer(
    name="ringfence",
    help="Secure-by-default MCP servers and ChatGPT apps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
logger = logging.getLogger("ringfence")


def fail(message: str) -> NoReturn:
    typer.echo(f"ringfence: error: {message}", err=True)
    raise typer.Exit(2)


@cli.callback()
def _root() -> None:
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
        list[str] | None, typer.Option(help="Extra browser Origin to accept on /mcp (repeatable).")
    ] = None,
    refusal_style: Annotated[
        str | None, typer.Option(help="auto | http | tool-result. [env RINGFENCE_REFUSAL_STYLE]")
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve an app over streamable HTTP at PUBLIC_URL/mcp."""
    # Imported here so that `ringfence --help` stays fast.
    from ringfence.server import build_asgi, describe_startup

    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
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
        )
        app = load_app(target)
        asgi = build_asgi(app, settings)
    except (ConfigError, DeclarationError, LoadError) as exc:
        fail(str(exc))
    except Exception as exc:  # an error in the app's own module: one line, not a traceback
        fail(f"cannot load {target}: {type(exc).__name__}: {exc}")
    for line in describe_startup(app, settings):
        logger.info(line)
    uvicorn.run(
        asgi,
        host=settings.host,
        port=settings.port,
        log_level=log_level.lower(),
        server_header=False,
        proxy_headers=False,
        lifespan="on",
    )


def main() -> None:
    cli()
