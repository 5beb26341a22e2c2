"""The declaration object an app author writes: its scopes and its tools, each declared once."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from ringfence.declaration import (
    DeclarationError,
    Limits,
    Scope,
    ToolDeclaration,
    ToolSpec,
    checked_timeout,
    declare_tool,
)
from ringfence.ops.ratelimit_keys import RateLimits
from ringfence.personal_data import PersonalData, PersonalDataDeclaration, declare_personal_data
from ringfence.policy import ScopeCatalog
from ringfence.serving import database_of
from ringfence.widgets import Widget, WidgetDeclaration, declare_widget
from ringfence.widgets import widget_domain as check_widget_domain

if TYPE_CHECKING:
    from ringfence.store.database import Database

F = TypeVar("F", bound=Callable[..., Any])



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
        privacy_policy_url: str | None = None,
        widget_domain: str | None = None,
        tool_timeout: float | None = None,
    ) -> None:
        if privacy_policy_url is not None and not privacy_policy_url.startswith("https://"):
            raise DeclarationError(f"privacy_policy_url {privacy_policy_url!r} must be an https URL")
        self.name = name
        # Seconds a tool call may run unless the tool declares timeout=; None: ringfence's default (30 s).
        self.tool_timeout = None if tool_timeout is None else checked_timeout("tool_timeout=", tool_timeout)
        self.privacy_policy_url = privacy_policy_url  # linked from the served /privacy page; for submission
        # The origin hosts serve the app's widgets under (unique per app); a widget's own domain= overrides it.
        self.widget_domain = None if widget_domain is None else check_widget_domain(f"app {name!r}", widget_domain)
        self.limits = limits or Limits()
        self.rate_limits = rate_limits or RateLimits()
        self.title = title or name
        self.instructions = instructions
        self.version = version
        self.catalog = ScopeCatalog(scopes)
        self._tools: dict[str, ToolSpec] = {}
        self._personal_data: dict[str, PersonalData] = {}
        self._widgets: dict[str, Widget] = {}

    def tool(self, **declaration: Unpack[ToolDeclaration]) -> Callable[[F], F]:
        """Declare a tool, once, with what :class:`ringfence.declaration.ToolDeclaration` lists:
        ``effect`` (``"read"``, ``"write"`` or ``"destructive"``, required), ``scopes``, ``returns``,
        ``open_world``, ``idempotent``, ``name``, ``title``, ``description``, ``meta``, ``limits``
        (default: the app's), ``preview``, ``log_arguments``, ``confirm``, ``widget``, ``irreversible``,
        ``reaches``, ``timeout`` (default: the app's ``tool_timeout``),
        ``unsafe_send_undeclared_personal_data`` and ``provider_scopes``."""

        def decorator(fn: F) -> F:
            spec = declare_tool(fn, **{**declaration, "limits": declaration.get("limits") or self.limits,
                                       "timeout": self.tool_timeout if declaration.get("timeout") is None
                                       else declaration["timeout"]})
            self.catalog.check_declared(spec)
            if spec.name in self._tools:
                raise DeclarationError(f"tool {spec.name!r} is declared twice")
            self._tools[spec.name] = spec
            return fn

        return decorator

    def personal_data(self, name: str, **declaration: Unpack[PersonalDataDeclaration]) -> PersonalData:
        """Declare records the app keeps about a person, for deletion, export, the purge and the disclosure:
        ``description``, ``data_classes``, ``export`` and ``delete`` (required), ``keep_days`` and ``purge``
        (:class:`ringfence.personal_data.PersonalDataDeclaration`)."""
        spec = declare_personal_data(name, **declaration)
        if name in self._personal_data:
            raise DeclarationError(f"personal data {name!r} is declared twice")
        self._personal_data[name] = spec
        return spec

    def widget(self, name: str, **declaration: Unpack[WidgetDeclaration]) -> Widget:
        """Declare a widget, once: ``html`` and ``description`` (required), ``domain``, the CSP's
        ``connect_domains``, ``resource_domains``, ``redirect_domains``, ``base_uri_domains`` and
        ``frame_domains`` (with ``unsafe_allow_frames``), ``prefers_border``, ``calls``, ``shows`` and
        ``title`` (:class:`ringfence.widgets.WidgetDeclaration`). Tools show it with ``widget=name``."""
        spec = declare_widget(name, **declaration)
        if name in self._widgets:
            raise DeclarationError(f"widget {name!r} is declared twice")
        self._widgets[name] = spec
        return spec

    @property
    def widgets(self) -> Mapping[str, Widget]:
        return MappingProxyType(self._widgets)

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
        database = database_of(self)
        if database is None:
            raise RuntimeError("the database is available only while the app is served (ringfence serve)")
        return database
