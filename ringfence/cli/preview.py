"""``ringfence preview``: show a running server's widgets in a local host page, as ChatGPT would."""

from __future__ import annotations

import os
from typing import Annotated

import typer

TOKEN_VARIABLE = "RINGFENCE_PREVIEW_TOKEN"  # noqa: S105 (the variable's name, not a secret)


def preview(
    mcp_url: Annotated[str, typer.Argument(help="The running server's MCP endpoint, e.g. http://127.0.0.1:8000/mcp.")],
    port: Annotated[int, typer.Option(help="Port of the host page on 127.0.0.1 (0: any free port).")] = 8765,
    widget_port: Annotated[
        int, typer.Option(help="Port of the widget origin, http://localhost:PORT (0: any free port).")
    ] = 8766,
) -> None:
    """Preview an app's widgets: a local host page that calls tools and shows their widgets, sandboxed
    and cross-origin under their declared CSP, in the MCP Apps and the legacy window.openai forms.

    The access token comes from RINGFENCE_PREVIEW_TOKEN (never the command line); without it calls are
    anonymous. Serves on 127.0.0.1 until Ctrl-C.
    """
    from ringfence.cli.options import fail

    if not mcp_url.startswith(("http://", "https://")):
        fail(f"MCP_URL must be an http(s) URL, not {mcp_url!r}")
    from ringfence.preview.server import serve

    token = os.environ.get(TOKEN_VARIABLE) or None
    if token is None:
        typer.echo(f"no {TOKEN_VARIABLE}: calls are anonymous", err=True)

    def announce(url: str) -> None:
        typer.echo(f"ringfence preview of {mcp_url}: open {url}")

    try:
        serve(mcp_url, token, port=port, widget_port=widget_port, announce=announce)
    except OSError as exc:
        fail(f"cannot listen on 127.0.0.1: {exc.strerror or exc}")
