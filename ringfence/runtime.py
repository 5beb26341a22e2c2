"""What serving builds from an app's declaration: the MCP SDK server, each tool behind its guard.

The declaration (:class:`ringfence.App`) stays as the author wrote it; everything that runs is made
here, once per server, from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mcp.server.apps import Apps, ResourceCsp
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.resources import TextResource
from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations

from ringfence.app import App
from ringfence.declaration import DeclarationError, ToolSpec
from ringfence.events import Events
from ringfence.guards.confirmation import ConfirmationStore, Confirmer
from ringfence.guards.wrapper import guard_tool
from ringfence.policy import PAGE, confirmation_channels, tool_meta_for
from ringfence.principal import ProviderTokenSource
from ringfence.ui.meta import (
    SKYBRIDGE_MIME,
    apps_csp,
    apps_uri,
    served_html,
    served_widgets,
    skybridge_resource_meta,
    skybridge_uri,
    tool_widget_meta,
)
from ringfence.widgets import Widget, check_widgets


def annotations_for(tool: ToolSpec) -> ToolAnnotations:
    """The four MCP hints, always all set, from the tool's effect (Apps SDK: missing hints are rejected)."""
    return ToolAnnotations(
        title=tool.title,
        read_only_hint=tool.effect == "read",
        destructive_hint=tool.effect == "destructive",
        idempotent_hint=tool.idempotent,
        open_world_hint=tool.open_world,
    )


def check_confirmation_page(app: App, confirm_page_url: str | None) -> None:
    """Refuse to serve a tool declared ``confirm="page"`` where there is no confirmation page to confirm it."""
    page_only = sorted(spec.name for spec in app.tools.values() if confirmation_channels(spec) == {PAGE})
    if page_only and confirm_page_url is None:
        raise DeclarationError(f"tools {page_only} declare confirm=\"page\", which needs the confirmation page "
                               "of the embedded authorization server (serve without --issuer)")


def mcp_server_for(app: App, confirm_page_url: str | None = None, events: Events | None = None,
                   provider_tokens: ProviderTokenSource | None = None) -> MCPServer:
    """The SDK server with every tool registered behind its guard, metadata derived; every call is
    recorded through ``events`` when given; tools that act at a login provider read the person's token
    there from ``provider_tokens``."""
    if not app.tools:
        raise DeclarationError(f"app {app.name!r} declares no tools")
    check_widgets(app.widgets, app.tools)
    served = served_widgets(app.widgets, app.tools.values(), app.widget_domain)
    confirmer = Confirmer(ConfirmationStore(lambda: app.database), confirm_page_url, app.title)
    tools = [guarded_tool(spec, guard_tool(spec, app.catalog, confirmer, events, provider_tokens), served)
             for spec in app.tools.values()]
    server = MCPServer(app.name, title=app.title, instructions=app.instructions, version=app.version, tools=tools,
                       extensions=[widget_resources(served.values())] if served else None)
    for widget in served.values():
        server.add_resource(TextResource(uri=skybridge_uri(widget), name=widget.name, title=widget.title,
                                         description=widget.description, mime_type=SKYBRIDGE_MIME,
                                         meta=skybridge_resource_meta(widget), text=served_html(widget)))
    return server


def guarded_tool(spec: ToolSpec, guarded: Callable[..., Any], served: Mapping[str, Widget]) -> Tool:
    """The SDK's tool of ``spec``, running ``guarded``, its metadata derived from the declaration.

    The guard converts the result as the SDK would (validating it against the output schema) and
    checks whatever it then changed against the schema again (guards/output_contract.py), so the
    SDK's second validation of the guarded result is dropped: the schema is still advertised, and
    without an output model the SDK validates nothing (its ``FuncMetadata`` fields are read live).
    """
    tool = Tool.from_function(guarded, name=spec.name, title=spec.title, description=spec.description,
                              annotations=annotations_for(spec),
                              meta={**tool_meta_for(spec), **tool_widget_meta(spec, served)})
    tool.fn_metadata.output_model = None
    return tool


def widget_resources(widgets: Iterable[Widget]) -> Apps:
    """The MCP Apps extension (its capability advertised) with each widget's ``ui://`` resource."""
    apps = Apps()
    for widget in widgets:
        apps.add_html_resource(apps_uri(widget), served_html(widget), name=widget.name, title=widget.title,
                               description=widget.description, csp=ResourceCsp.model_validate(apps_csp(widget)),
                               domain=widget.domain, prefers_border=widget.prefers_border)
    return apps
