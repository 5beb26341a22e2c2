"""The declaration object an app author writes: its scopes and its tools, each declared once."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from mcp.server.mcpserver import MCPServer

from ringfence.declaration import DeclarationError, Scope, ToolSpec, declare_tool
from ringfence.events import Events
from ringfence.guards.confirmation import ConfirmationStore, Confirmer
from ringfence.guards.validation import Limits
from ringfence.guards.wrapper import guard_tool
from ringfence.ops.ratelimit_keys import RateLimits
from ringfence.policy import PAGE, ScopeCatalog, annotations_for, confirmation_channels, tool_meta_for
from ringfence.privacy.declaration import DeleteHook, ExportHook, PersonalData, PurgeHook, declare_personal_data
from ringfence.store.database import Database

F = TypeVar("F", bound=Callable[..., Any])
_REQUIRED = object()


class App:
    """A secure MCP server / ChatGPT app, declared tool by tool.

    >>> app = App("contacts", scopes=[Scope("contacts:read", "See your contacts")])
    >>> @app.tool(effect="read", scopes=["contacts:read"], returns=["personal"])
    ... async def search_contacts(query: str) -> list[dict]: ...
    """

    def __init__(
        self,
        name: str,
        *,
        scopes: Iterable[Scope] = (),
        title: str | None = None,
        instructions: str | None = None,
        version: str = "0.1.0",
        limits: Limits | None = None,
        rate_limits: RateLimits | None = None,
    ) -> None:
        self.name = name
        self.limits = limits or Limits()
        self.rate_limits = rate_limits or RateLimits()
        self.title = title or name
        self.instructions = instructions
        self.version = version
        self.catalog = ScopeCatalog(scopes)
        self._tools: dict[str, ToolSpec] = {}
        self._database: Database | None = None
        self._personal_data: dict[str, PersonalData] = {}

    def tool(
        self,
        *,
        effect: Any = _REQUIRED,
        scopes: Iterable[str] = (),
        returns: Iterable[str] = (),
        open_world: bool = False,
        idempotent: bool | None = None,
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        meta: dict[str, Any] | None = None,
        limits: Limits | None = None,
        preview: Callable[..., Any] | None = None,
        log_arguments: Iterable[str] = (),
        confirm: str | None = None,
    ) -> Callable[[F], F]:
        """Declare a tool: ``effect`` is ``"read"``, ``"write"`` or ``"destructive"`` (required);
        ``scopes`` are all required to call it (none: a public tool); ``returns`` names the data
        classes in its results; ``open_world`` says it reaches beyond the user's account;
        ``limits`` replaces the app's argument limits for this tool; ``preview`` (destructive tools)
        takes the call's arguments and says, in a sentence, what the call would do;
        ``log_arguments`` names parameters whose values (redacted) its log and audit records include;
        ``confirm="page"`` (destructive tools) accepts only the signed-in confirmation page as the
        user's confirmation, never the client's elicitation answer or widget button (default ``"any"``).
        """

        def decorator(fn: F) -> F:
            spec = declare_tool(
                fn,
                effect=None if effect is _REQUIRED else effect,
                scopes=scopes,
                returns=returns,
                open_world=open_world,
                idempotent=idempotent,
                name=name,
                title=title,
                description=description,
                meta=meta,
                limits=limits or self.limits,
                preview=preview,
                log_arguments=log_arguments,
                confirm=confirm,
            )
            self.catalog.check_declared(spec)
            if spec.name in self._tools:
                raise DeclarationError(f"tool {spec.name!r} is declared twice")
            self._tools[spec.name] = spec
            return fn

        return decorator

    def personal_data(
        self,
        name: str,
        *,
        description: str,
        data_classes: Iterable[str],
        export: ExportHook,
        delete: DeleteHook,
        keep_days: int | None = None,
        purge: PurgeHook | None = None,
    ) -> PersonalData:
        """Declare records the app keeps about a person, for deletion, export, the purge and the disclosure.

        ``export(subject)`` returns them as JSON-able data; ``delete(subject)`` removes them and returns
        how many; with ``keep_days``, ``purge(older_than)`` removes records older than the cut-off.
        """
        spec = declare_personal_data(name, description=description, data_classes=data_classes, export=export,
                                     delete=delete, keep_days=keep_days, purge=purge)
        if name in self._personal_data:
            raise DeclarationError(f"personal data {name!r} is declared twice")
        self._personal_data[name] = spec
        return spec

    @property
    def personal_data_declarations(self) -> Mapping[str, PersonalData]:
        return MappingProxyType(self._personal_data)

    @property
    def tools(self) -> Mapping[str, ToolSpec]:
        return MappingProxyType(self._tools)

    @property
    def scopes(self) -> Mapping[str, Scope]:
        return MappingProxyType(self.catalog.scopes)

    @property
    def database(self) -> Database:
        """The storage the app's tools use; available while the app is being served."""
        if self._database is None:
            raise RuntimeError("the database is available only while the app is served (ringfence serve)")
        return self._database

    def attach_database(self, database: Database | None) -> None:
        self._database = database

    def check_confirmation_page(self, confirm_page_url: str | None) -> None:
        """Refuse to serve a tool declared ``confirm="page"`` where there is no confirmation page to confirm it."""
        page_only = sorted(spec.name for spec in self._tools.values() if confirmation_channels(spec) == {PAGE})
        if page_only and confirm_page_url is None:
            raise DeclarationError(f"tools {page_only} declare confirm=\"page\", which needs the confirmation page "
                                   "of the embedded authorization server (serve without --issuer)")

    def mcp_server(self, confirm_page_url: str | None = None, events: Events | None = None) -> MCPServer:
        """The SDK server with every tool registered behind its guard, metadata derived; every call is
        recorded through ``events`` when given."""
        if not self._tools:
            raise DeclarationError(f"app {self.name!r} declares no tools")
        server = MCPServer(self.name, title=self.title, instructions=self.instructions, version=self.version)
        confirmer = Confirmer(ConfirmationStore(lambda: self.database), confirm_page_url, self.title)
        for spec in self._tools.values():
            server.add_tool(
                guard_tool(spec, self.catalog, confirmer, events),
                name=spec.name,
                title=spec.title,
                description=spec.description,
                annotations=annotations_for(spec),
                meta=tool_meta_for(spec),
            )
        return server
