"""Widgets: the HTML a host shows for a tool's result, in a sandboxed iframe under the CSP declared here.

An author declares a widget once (``app.widget(...)``) and attaches it to tools (``@app.tool(widget=...)``).
Everything a host reads about it, in the MCP Apps form (``_meta.ui``) and in the legacy OpenAI form
(``openai/*``), is derived from this one declaration in :mod:`ringfence.ui.meta`, so the two
forms cannot disagree.

What is refused, when the widget is declared (Apps SDK security guide: a strict CSP, only the
domains the widget needs, subframes off unless declared):

- a domain that is not an https origin (no path, query or credentials), or a wildcard that matches
  everything (``*``, ``https://*``, ``https://*.com``); ``https://*.example.com`` is allowed;
- ``frame_domains`` without ``unsafe_allow_frames=True`` (named for what it gives up, and logged at
  start-up: a frame can show any page of those sites inside the widget);
- ``shows=["credentials"]``: secrets never reach a widget, whose data and state are user-visible.

A tool's ``returns`` must be within its widget's ``shows``; that, and that each tool named exists,
is checked when the app is served (:func:`check_widgets`), since tools and widgets may be declared
in any order.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Required, TypedDict, Unpack

from ringfence.declaration import DATA_CLASSES, DeclarationError, ToolSpec

_WIDGET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# An https origin, optionally with a leading "*." label: no path, query, fragment or user info.
_ORIGIN = re.compile(r"^https://(\*\.)?([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)((?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*)"
                     r"(:[0-9]{1,5})?/?$")
NEVER_SHOWN = frozenset({"credentials"})  # Apps SDK: no secrets in anything a widget gets
CSP_KINDS = ("connect", "resource", "frame", "redirect", "base_uri")
MAX_STATUS_TEXT = 64  # Apps SDK: openai/toolInvocation/* are at most 64 characters


@dataclass(frozen=True)
class Widget:
    """One widget as declared: its HTML, what it may load and reach, and what it may be shown and call.

    ``connect``, ``resource``, ``frame``, ``redirect`` and ``base_uri`` are the CSP's allowed
    origins for ``fetch``/XHR/WebSocket, for scripts/styles/images/fonts, for ``<iframe>``, for
    ``openExternal`` without the safe-link prompt, and for ``<base href>``.
    """

    name: str
    html: str
    description: str
    domain: str | None
    connect: tuple[str, ...]
    resource: tuple[str, ...]
    frame: tuple[str, ...]
    redirect: tuple[str, ...]
    base_uri: tuple[str, ...]
    prefers_border: bool
    calls: tuple[str, ...]  # tools the widget may call (through the host; every check still applies)
    shows: frozenset[str]  # data classes its tools may send it
    title: str | None = None
    source: str | None = None  # the HTML file, for lint findings

    @functools.cached_property
    def version(self) -> str:
        """A digest of the HTML: part of the resource URIs, so a changed widget is never served from a host's cache."""
        return hashlib.sha256(self.html.encode()).hexdigest()[:12]


class WidgetDeclaration(TypedDict, total=False):
    """What an author may say of a widget (``app.widget(name, ...)``).

    ``html`` is the document (a string) or a file holding it (a :class:`pathlib.Path`); ``description``
    is what the host tells the model when the widget loads; ``domain`` is the widget's own https
    origin (required to submit to ChatGPT; unique per app); ``connect_domains``, ``resource_domains``,
    ``redirect_domains`` and ``base_uri_domains`` are the origins its CSP allows (none by default);
    ``frame_domains`` needs ``unsafe_allow_frames=True``; ``prefers_border`` asks for a bordered card
    (default true); ``calls`` names the tools the widget may call; ``shows`` the data classes its
    tools may send it (default ``["public"]``); ``title`` defaults to the name.
    """

    html: Required[str | Path]
    description: Required[str]
    domain: str | None
    connect_domains: Iterable[str]
    resource_domains: Iterable[str]
    frame_domains: Iterable[str]
    redirect_domains: Iterable[str]
    base_uri_domains: Iterable[str]
    unsafe_allow_frames: bool
    prefers_border: bool
    calls: Iterable[str]
    shows: Iterable[str]
    title: str | None


def declare_widget(name: str, **declaration: Unpack[WidgetDeclaration]) -> Widget:
    """Check one widget declaration and return it, frozen."""
    if not isinstance(name, str) or not _WIDGET_NAME.match(name):
        raise DeclarationError(f"widget name {name!r} must be 1-64 lowercase letters, digits, '-' or '_'")
    unknown = sorted(set(declaration) - set(WidgetDeclaration.__annotations__))
    if unknown:
        raise DeclarationError(f"widget {name!r}: unknown declaration {', '.join(unknown)}; a widget declares "
                               f"{', '.join(WidgetDeclaration.__annotations__)}")
    html, source = _html(name, declaration.get("html"))
    description = declaration.get("description")
    if not isinstance(description, str) or not description.strip():
        raise DeclarationError(f"widget {name!r} needs a description: the host tells the model what it shows")
    domains = {kind: _origins(name, kind, declaration.get(f"{kind}_domains", ())) for kind in CSP_KINDS}  # type: ignore[misc]
    if domains["frame"] and declaration.get("unsafe_allow_frames") is not True:
        raise DeclarationError(f"widget {name!r}: frame_domains lets it show other sites' pages inside it; "
                               "declare unsafe_allow_frames=True if it must (it is logged at start-up)")
    domain = declaration.get("domain")
    if domain is not None:
        domain = widget_domain(f"widget {name!r}", domain)
    shows = _names(name, "shows", declaration.get("shows", ("public",)))
    unknown_classes = sorted(set(shows) - set(DATA_CLASSES))
    if unknown_classes:
        raise DeclarationError(f"widget {name!r} shows unknown data classes {unknown_classes}; "
                               f"known: {', '.join(DATA_CLASSES)}")
    if NEVER_SHOWN & set(shows):
        raise DeclarationError(f"widget {name!r}: credentials never reach a widget (its data is user-visible)")
    return Widget(name=name, html=html, description=description.strip(), domain=domain,
                  connect=domains["connect"], resource=domains["resource"], frame=domains["frame"],
                  redirect=domains["redirect"], base_uri=domains["base_uri"],
                  prefers_border=declaration.get("prefers_border", True),
                  calls=_names(name, "calls", declaration.get("calls", ())), shows=frozenset(shows),
                  title=declaration.get("title"), source=source)


def widget_domain(owner: str, domain: object) -> str:
    """A widget domain: one https origin, no wildcard (the host serves the widget under it)."""
    origin = widget_origin(owner, "widget", domain)
    if "*" in origin:
        raise DeclarationError(f"{owner}: the widget domain must be one origin, not a wildcard")
    return origin


def _html(name: str, html: object) -> tuple[str, str | None]:
    if isinstance(html, Path):
        try:
            return html.read_text(encoding="utf-8"), str(html)
        except (OSError, UnicodeDecodeError) as exc:
            raise DeclarationError(f"widget {name!r}: cannot read its HTML from {html}: {exc}") from None
    if not isinstance(html, str) or not html.strip():
        raise DeclarationError(f"widget {name!r} needs html=: the document, or a pathlib.Path to it")
    return html, None


def _names(widget: str, what: str, names: object) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise DeclarationError(f"widget {widget!r}: {what}= takes a list, not {type(names).__name__}")
    return tuple(dict.fromkeys(str(name) for name in names))


def _origins(widget: str, kind: str, values: object) -> tuple[str, ...]:
    """Each value one https origin (:func:`widget_origin`), duplicates dropped."""
    names = _names(widget, f"{kind}_domains", values)
    return tuple(dict.fromkeys(widget_origin(f"widget {widget!r}", kind, value) for value in names))


def widget_origin(owner: str, kind: str, value: object) -> str:
    """An https origin, lower-cased, without a trailing slash; a wildcard only as ``*.<domain>``."""
    origin = str(value).strip().lower().rstrip("/")
    match = _ORIGIN.match(origin)
    if match is None:
        raise DeclarationError(f"{owner}: {kind} domain {value!r} is not an https origin "
                               "(https://host[:port], no path; wildcards only as https://*.example.com)")
    if match.group(1) and not match.group(3):  # "*.com": every site under a top-level domain
        raise DeclarationError(f"{owner}: {kind} domain {value!r} is a wildcard over a whole top-level domain; "
                               "name the sites")
    return origin


def check_widgets(widgets: Mapping[str, Widget], tools: Mapping[str, ToolSpec]) -> None:
    """Refuse an app whose tools and widgets do not fit together (when it is served, linted or locked)."""
    for tool in tools.values():
        if tool.widget is None:
            continue
        widget = widgets.get(tool.widget)
        if widget is None:
            raise DeclarationError(f"tool {tool.name!r} shows widget {tool.widget!r}, which is not declared; "
                                   "declare it with app.widget(...)")
        beyond = sorted(tool.returns - widget.shows)
        if beyond:
            raise DeclarationError(f"tool {tool.name!r} returns {beyond} data, which widget {widget.name!r} may not "
                                   f"be shown; add them to its shows= if the widget needs them")
    for widget in widgets.values():
        unknown = [name for name in widget.calls if name not in tools]
        if unknown:
            raise DeclarationError(f"widget {widget.name!r} calls {unknown}, which are not tools of this app")


def frame_warnings(widgets: Iterable[Widget]) -> list[str]:
    """The start-up line for each widget that may embed other sites' pages (``unsafe_allow_frames``)."""
    return [f"widget {widget.name!r} may show pages of {', '.join(widget.frame)} in frames (unsafe_allow_frames)"
            for widget in widgets if widget.frame]


# What the tool now running sends its widget alone (to_widget); None outside a tool with a widget.
_widget_only: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("ringfence_widget_only",
                                                                                      default=None)
WIDGET_META_KEY = "widget"  # where it travels: the result's _meta, which hosts never show the model


def to_widget(**data: Any) -> None:
    """Send ``data`` to the widget that shows this call's result, and not to the model: it travels in
    the result's ``_meta["widget"]`` (Apps SDK: ``_meta`` is delivered to the widget only), through
    the same output guards as the rest. Only a tool declared with ``widget=`` may call it."""
    collected = _widget_only.get()
    if collected is None:
        raise RuntimeError("to_widget() is for tools declared with widget=, while they run")
    collected.update(data)


@contextmanager
def collecting_widget_data(tool: ToolSpec) -> Iterator[dict[str, Any]]:
    """Collect what the tool sends its widget while it runs (nothing, for a tool without one)."""
    collected: dict[str, Any] = {}
    token = _widget_only.set(collected if tool.widget is not None else None)
    try:
        yield collected
    finally:
        _widget_only.reset(token)
