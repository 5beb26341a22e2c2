"""Everything a host reads about widgets, derived from their declarations, in both forms at once.

Each widget is served twice, with the same HTML and from the same values:

- the MCP Apps form (ChatGPT today, and every MCP Apps host): a ``ui://`` resource of MIME
  ``text/html;profile=mcp-app`` whose ``_meta.ui`` holds ``csp`` (``connectDomains``,
  ``resourceDomains``, ``frameDomains``, ``baseUriDomains``), ``domain`` and ``prefersBorder``; a tool
  names it in ``_meta.ui.resourceUri``;
- the legacy OpenAI form, for hosts that still read it: a resource of MIME ``text/html+skybridge``
  whose ``_meta`` holds ``openai/widgetCSP`` (``connect_domains``, ``resource_domains``,
  ``frame_domains``, ``redirect_domains``), ``openai/widgetDomain``, ``openai/widgetPrefersBorder`` and
  ``openai/widgetDescription``; a tool names it in ``openai/outputTemplate``.

The URIs carry a digest of the HTML, so a changed widget gets a new URI (Apps SDK: give the template
a new URI whenever it changes; hosts cache it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import cache
from importlib import resources
from typing import Any

from ringfence.declaration import ToolSpec
from ringfence.policy import HANDLE, confirmation_channels
from ringfence.widgets import MAX_STATUS_TEXT, Widget, declare_widget

APPS_MIME = "text/html;profile=mcp-app"  # MCP Apps (mcp.server.apps.APP_MIME_TYPE)
SKYBRIDGE_MIME = "text/html+skybridge"  # Apps SDK v1/v2
CARD = "ringfence-confirm"  # the built-in confirmation card's widget name


def asset(name: str) -> str:
    return resources.files("ringfence.ui").joinpath("assets", name).read_text(encoding="utf-8")


@cache
def bridge_script() -> str:
    return asset("bridge.js")


def served_html(widget: Widget) -> str:
    """The widget's HTML with ringfence's bridge (``window.ringfence``) added at the end of ``<head>``."""
    script = f"<script>\n{bridge_script()}</script>\n"
    html = widget.html
    position = html.lower().find("</head>")
    if position < 0:
        return script + html
    return html[:position] + script + html[position:]


def apps_uri(widget: Widget) -> str:
    return f"ui://{widget.name}/{widget.version}.html"


def skybridge_uri(widget: Widget) -> str:
    return f"ui://{widget.name}/{widget.version}.skybridge.html"


def apps_csp(widget: Widget) -> dict[str, list[str]]:
    """``_meta.ui.csp``: empty lists where nothing is allowed (the host allows nothing else)."""
    return {"connectDomains": list(widget.connect), "resourceDomains": list(widget.resource),
            "frameDomains": list(widget.frame), "baseUriDomains": list(widget.base_uri)}


def openai_csp(widget: Widget) -> dict[str, list[str]]:
    """``openai/widgetCSP``: the same values under the legacy names (``redirect_domains`` exists only here)."""
    return {"connect_domains": list(widget.connect), "resource_domains": list(widget.resource),
            "frame_domains": list(widget.frame), "redirect_domains": list(widget.redirect)}


def skybridge_resource_meta(widget: Widget) -> dict[str, Any]:
    meta: dict[str, Any] = {"openai/widgetCSP": openai_csp(widget), "openai/widgetPrefersBorder": widget.prefers_border,
                            "openai/widgetDescription": widget.description}
    if widget.domain is not None:
        meta["openai/widgetDomain"] = widget.domain
    return meta


def status_texts(tool: ToolSpec) -> dict[str, str]:
    """``openai/toolInvocation/*``: what the host shows while the tool runs and when it is done."""
    title = tool.title or tool.name.replace("_", " ")
    return {"openai/toolInvocation/invoking": f"Running {title}…"[:MAX_STATUS_TEXT],
            "openai/toolInvocation/invoked": f"Finished {title}"[:MAX_STATUS_TEXT]}


def served_widgets(widgets: Mapping[str, Widget], tools: Iterable[ToolSpec],
                   domain: str | None = None) -> dict[str, Widget]:
    """The widgets an app serves: those it declares, each under its own domain or the app's (``domain``),
    plus the confirmation card when a destructive or irreversible tool may be confirmed with its button,
    under the app's domain, or the one its widgets share."""
    served = {name: widget if widget.domain or not domain else replace(widget, domain=domain)
              for name, widget in widgets.items()}
    if any(HANDLE in confirmation_channels(tool) for tool in tools):
        shared = {widget.domain for widget in served.values()} - {None}
        served[CARD] = confirmation_card(domain or (shared.pop() if len(shared) == 1 else None))
    return served


def tool_widget_meta(tool: ToolSpec, served: Mapping[str, Widget]) -> dict[str, Any]:
    """The tool's widget keys, in both forms: the widget its result is shown in (its own, or the
    confirmation card for a destructive or irreversible tool), and whether widgets may call it.

    Only an app that serves widgets gets them. A tool no widget calls is marked for the model only
    (``ui.visibility``, ``openai/widgetAccessible`` false): widgets get no more than they declare.
    """
    if not served:
        return {}
    shown_in = served[CARD] if HANDLE in confirmation_channels(tool) else served.get(tool.widget or "")
    confirmed_by_card = shown_in is not None and shown_in.name == CARD
    accessible = confirmed_by_card or any(tool.name in widget.calls for widget in served.values())
    ui: dict[str, Any] = {"visibility": ["model", "app"] if accessible else ["model"]}
    meta: dict[str, Any] = {"openai/widgetAccessible": accessible}
    if shown_in is not None:
        ui["resourceUri"] = apps_uri(shown_in)
        meta["openai/outputTemplate"] = skybridge_uri(shown_in)
        meta.update(status_texts(tool))
    return {"ui": ui, **meta}


@cache
def confirmation_card(domain: str | None = None) -> Widget:
    """ringfence's own widget for destructive and irreversible calls: the preview, then Confirm or Decline.
    Confirm calls the tool again through the host with the handle from ``_meta`` (which the model never sees). It is
    served under the app's widget domain, when its widgets share one."""
    return declare_widget(CARD, html=asset("confirm.html"), title="Confirm", domain=domain,
                          description="Asks the user to confirm or decline an action before it is done.",
                          prefers_border=True, shows=[])
