"""Widgets as a host loads them: each tool's template resource, its CSP, domain and MIME type, and its HTML
through the widget lint. Both metadata forms are read: MCP Apps (``_meta.ui``) and OpenAI's
(``openai/outputTemplate``, ``openai/widgetCSP``, ``openai/widgetDomain``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ringfence.declaration import DeclarationError
from ringfence.review.report import Finding
from ringfence.review.scan import catalogue as c
from ringfence.review.scan.context import ScanContext, failed, passed, skipped
from ringfence.review.scan.probe import Exchange, OutOfScope
from ringfence.review.widget_lint import lint_widget
from ringfence.widgets import Widget, widget_origin

APPS_MIME = "text/html;profile=mcp-app"
SKYBRIDGE_MIME = "text/html+skybridge"
# CSP lists in each form: (MCP Apps key, OpenAI key, Widget field)
_LISTS = (("connectDomains", "connect_domains", "connect"), ("resourceDomains", "resource_domains", "resource"),
          ("frameDomains", "frame_domains", "frame"), ("baseUriDomains", "base_uri_domains", "base_uri"),
          (None, "redirect_domains", "redirect"))
_MAX_WIDGETS = 10


@dataclass(frozen=True)
class Template:
    """One widget template as served: where it came from, its HTML, and its declared policy."""

    uri: str
    form: str  # "mcp-apps" or "openai"
    mime: str
    html: str
    csp: dict[str, Any] | None
    domain: str | None
    exchange: Exchange


def _template_uris(tools: list[dict[str, Any]]) -> dict[str, str]:
    """Each ui:// template a tool names, with its form."""
    uris: dict[str, str] = {}
    for tool in tools:
        meta = tool.get("_meta") if isinstance(tool.get("_meta"), dict) else {}
        ui = meta.get("ui") if isinstance(meta.get("ui"), dict) else {}
        if isinstance(ui.get("resourceUri"), str):
            uris.setdefault(ui["resourceUri"], "mcp-apps")
        if isinstance(meta.get("openai/outputTemplate"), str):
            uris.setdefault(meta["openai/outputTemplate"], "openai")
    return uris


def _read(ctx: ScanContext, uri: str, form: str) -> Template | None:
    session = ctx.token_session or ctx.anonymous_session
    if session is None:
        return None
    answer = session.send("resources/read", {"uri": uri})
    contents = (answer.result or {}).get("contents")
    if not isinstance(contents, list) or not contents or not isinstance(contents[0], dict):
        return None
    content = contents[0]
    meta = content.get("_meta") if isinstance(content.get("_meta"), dict) else {}
    if form == "mcp-apps":
        ui = meta.get("ui") if isinstance(meta.get("ui"), dict) else {}
        csp, domain = ui.get("csp"), ui.get("domain")
    else:
        csp, domain = meta.get("openai/widgetCSP"), meta.get("openai/widgetDomain")
    return Template(uri, form, str(content.get("mimeType", "")), str(content.get("text", "")),
                    csp if isinstance(csp, dict) else None, domain if isinstance(domain, str) else None,
                    answer.exchange)


def run(ctx: ScanContext) -> Iterator[Finding]:
    checks = (c.WIDGET_CSP, c.WIDGET_CSP_WILDCARD, c.WIDGET_FRAMES, c.WIDGET_DOMAIN, c.WIDGET_MIME, c.WIDGET_LINT)
    uris = _template_uris(ctx.tools)
    if not uris:
        for check in checks:
            yield skipped(check, "no tool names a widget template" if ctx.tools else "no tools were listed",
                          ctx.url)
        return
    templates: list[Template] = []
    unread: list[str] = []
    for uri, form in list(uris.items())[:_MAX_WIDGETS]:
        try:
            template = _read(ctx, uri, form)
        except OutOfScope:
            break
        if template is None:
            unread.append(uri)
        else:
            templates.append(template)
    if unread:
        yield failed(c.WIDGET_MIME, "templates a tool names could not be read: " + ", ".join(unread),
                     location=ctx.url, severity="medium")
    if not templates:
        for check in checks:
            yield skipped(check, "no widget template could be read", ctx.url)
        return
    for template in templates:
        yield from _check_template(template)


def _check_template(template: Template) -> Iterator[Finding]:
    where = template.uri
    expected = APPS_MIME if template.form == "mcp-apps" else SKYBRIDGE_MIME
    if template.mime.replace(" ", "") == expected:
        yield passed(c.WIDGET_MIME, template.mime, where)
    else:
        yield failed(c.WIDGET_MIME, f"served as {template.mime!r}, hosts expect {expected!r}",
                     template.exchange.evidence(), location=where)
    if template.domain:
        yield passed(c.WIDGET_DOMAIN, template.domain, where)
    else:
        yield failed(c.WIDGET_DOMAIN, "no widget domain", location=where)
    if template.csp is None:
        yield failed(c.WIDGET_CSP, "no CSP declared: the host applies its default or refuses the app",
                     location=where)
        for check in (c.WIDGET_CSP_WILDCARD, c.WIDGET_FRAMES):
            yield skipped(check, "no CSP declared (see SC601)", where)
        yield from _check_html(template, {})
        return
    yield passed(c.WIDGET_CSP, "CSP declared", where)
    lists = _csp_lists(template)
    wide = [f"{field}: {value!r} ({why})" for field, values in lists.items() for value in values
            if (why := _too_wide(value))]
    if wide:
        broad = any("every" in item for item in wide)
        yield failed(c.WIDGET_CSP_WILDCARD, "; ".join(wide), f"resources/read {where} -> csp={template.csp!r}",
                     location=where, severity=None if broad else "low")
    else:
        yield passed(c.WIDGET_CSP_WILDCARD, "exact https origins", where)
    if lists.get("frame"):
        yield failed(c.WIDGET_FRAMES, f"the widget may show pages of {', '.join(lists['frame'])} in frames",
                     location=where)
    else:
        yield passed(c.WIDGET_FRAMES, "no frame domains", where)
    yield from _check_html(template, lists)


def _csp_lists(template: Template) -> dict[str, list[str]]:
    csp = template.csp or {}
    lists: dict[str, list[str]] = {}
    for apps_key, openai_key, field in _LISTS:
        key = apps_key if template.form == "mcp-apps" else openai_key
        values = csp.get(key) if key else None
        lists[field] = [str(value) for value in values] if isinstance(values, list) else []
    return lists


def _too_wide(value: str) -> str:
    """Why a CSP source is broader than one https origin, or ''."""
    if value.strip() in ("*", "https:", "http:", "https://*", "http://*", "data:", "blob:"):
        return "allows every origin"
    if value.startswith("http://"):
        return "not https"
    try:
        origin = widget_origin("widget", "csp", value)
    except DeclarationError as exc:
        return "allows every site under a top-level domain" if "top-level" in str(exc) else "not an https origin"
    return "a wildcard over subdomains" if origin.startswith("https://*.") else ""


def _check_html(template: Template, lists: dict[str, list[str]]) -> Iterator[Finding]:
    exact = {field: tuple(value for value in values if not _too_wide(value)) for field, values in lists.items()}
    widget = Widget(name=template.uri, html=template.html, description="", domain=template.domain,
                    connect=exact.get("connect", ()), resource=exact.get("resource", ()),
                    frame=exact.get("frame", ()), redirect=exact.get("redirect", ()),
                    base_uri=exact.get("base_uri", ()), prefers_border=True, calls=(), shows=frozenset())
    findings = lint_widget(widget)
    if any(_too_wide(value) == "allows every origin" for values in lists.values() for value in values):
        # A source that allows everything is SC602's finding; RF105 ("outside the CSP") would be false.
        findings = [finding for finding in findings if finding.code != "RF105"]
    if findings:
        errors = [finding for finding in findings if finding.severity == "error"]
        yield failed(c.WIDGET_LINT, "; ".join(f"{f.code} line {f.line}: {f.message}" for f in findings[:8]),
                     location=template.uri, severity=None if errors else "low")
    else:
        yield passed(c.WIDGET_LINT, "the widget lint finds nothing", template.uri)
