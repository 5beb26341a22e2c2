"""The Content-Security-Policy the preview serves a widget under, built from the CSP its server declared.

For a widget that declared resource origins R, connect origins C, frame origins F and base-URI origins B
(each list may be empty), the widget document is served with exactly::

    default-src 'none'; script-src 'unsafe-inline' R; style-src 'unsafe-inline' R; img-src data: R;
    font-src data: R; media-src data: R; connect-src C|'none'; frame-src F|'none'; base-uri B|'none';
    form-action 'none'; report-uri http://127.0.0.1:PORT/api/csp-report

``C|'none'`` means the origins, or ``'none'`` when there are none. The MCP Apps form reads
``_meta.ui.csp`` (``connectDomains``, ``resourceDomains``, ``frameDomains``, ``baseUriDomains``); the
legacy form reads ``_meta["openai/widgetCSP"]`` (``connect_domains``, ``resource_domains``,
``frame_domains``; it has no base-URI list). A declared value that is not an https origin
(``https://host[:port]`` or ``https://*.domain``) is dropped, so a server cannot widen or break the policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_ORIGIN = re.compile(r"^https://(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:[0-9]{1,5})?$")
_APPS_KEYS = {"connect": "connectDomains", "resource": "resourceDomains", "frame": "frameDomains",
              "base_uri": "baseUriDomains"}
_OPENAI_KEYS = {"connect": "connect_domains", "resource": "resource_domains", "frame": "frame_domains"}


@dataclass(frozen=True)
class DeclaredCsp:
    """The origins a widget declared, by what they may be used for."""

    connect: tuple[str, ...] = ()
    resource: tuple[str, ...] = ()
    frame: tuple[str, ...] = ()
    base_uri: tuple[str, ...] = ()


def declared_csp(resource_meta: dict[str, Any] | None, form: str) -> DeclaredCsp:
    """The CSP a widget resource's ``_meta`` declares, in the MCP Apps form or the legacy ``openai`` form."""
    meta = resource_meta if isinstance(resource_meta, dict) else {}
    if form == "openai":
        declared, keys = meta.get("openai/widgetCSP"), _OPENAI_KEYS
    else:
        ui = meta.get("ui")
        declared, keys = (ui.get("csp") if isinstance(ui, dict) else None), _APPS_KEYS
    if not isinstance(declared, dict):
        declared = {}
    return DeclaredCsp(**{kind: _origins(declared.get(key)) for kind, key in keys.items()})


def _origins(values: object) -> tuple[str, ...]:
    if not isinstance(values, list):
        return ()
    origins = (value.strip().lower().rstrip("/") for value in values if isinstance(value, str))
    return tuple(dict.fromkeys(origin for origin in origins if _ORIGIN.match(origin)))


def widget_policy(csp: DeclaredCsp, report_uri: str) -> str:
    """The ``Content-Security-Policy`` header value for a widget document (see the module docstring)."""

    def sources(*fixed: str, origins: tuple[str, ...]) -> str:
        return " ".join((*fixed, *origins)) or "'none'"

    inline, data = "'unsafe-inline'", "data:"
    directives = [
        "default-src 'none'",
        f"script-src {sources(inline, origins=csp.resource)}",
        f"style-src {sources(inline, origins=csp.resource)}",
        f"img-src {sources(data, origins=csp.resource)}",
        f"font-src {sources(data, origins=csp.resource)}",
        f"media-src {sources(data, origins=csp.resource)}",
        f"connect-src {sources(origins=csp.connect)}",
        f"frame-src {sources(origins=csp.frame)}",
        f"base-uri {sources(origins=csp.base_uri)}",
        "form-action 'none'",
        f"report-uri {report_uri}",
    ]
    return "; ".join(directives)


def host_policy(widget_origin: str) -> str:
    """The host page's own policy: its script and style from itself, frames from the widget origin only."""
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            f"frame-src {widget_origin}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
