"""What serving builds from an app's declaration: the MCP SDK server, each tool behind its guard.

The declaration (:class:`ringfence.App`) stays as the author wrote it; everything that runs is made
here, once per server, from it.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from ringfence.app import App
from ringfence.declaration import DeclarationError, ToolSpec
from ringfence.events import Events
from ringfence.guards.confirmation import ConfirmationStore, Confirmer
from ringfence.guards.wrapper import guard_tool
from ringfence.policy import PAGE, confirmation_channels, tool_meta_for


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


def mcp_server_for(app: App, confirm_page_url: str | None = None, events: Events | None = None) -> MCPServer:
    """The SDK server with every tool registered behind its guard, metadata derived; every call is
    recorded through ``events`` when given."""
    if not app.tools:
        raise DeclarationError(f"app {app.name!r} declares no tools")
    server = MCPServer(app.name, title=app.title, instructions=app.instructions, version=app.version)
    confirmer = Confirmer(ConfirmationStore(lambda: app.database), confirm_page_url, app.title)
    for spec in app.tools.values():
        server.add_tool(
            guard_tool(spec, app.catalog, confirmer, events),
            name=spec.name,
            title=spec.title,
            description=spec.description,
            annotations=annotations_for(spec),
            meta=tool_meta_for(spec),
        )
    return server
