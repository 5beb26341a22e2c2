"""Lint of each widget's HTML and scripts: what the Apps SDK forbids in widgets, and what their CSP would block.

  RF101 error    ``alert()``, ``prompt()``, ``confirm()``: the Apps SDK security guide forbids dialogs in widgets
  RF102 error    ``navigator.clipboard`` or ``execCommand("copy")``: forbidden by the same guide
  RF103 error    ``eval``, ``Function(...)``, a string given to ``setTimeout``/``setInterval``: text run as code
  RF104 warning  inline event handlers (``onclick=``) and ``javascript:`` URLs. A warning, not an error: they
                 work where the host's CSP allows ``'unsafe-inline'``, but any CSP that allows inline script
                 by nonce or hash instead blocks them, and they hide script in markup where reviewers miss it
  RF105 error    a literal URL the widget's declared CSP would block: ``fetch``/``XMLHttpRequest``/``WebSocket``/
                 ``EventSource``/``sendBeacon`` outside ``connect_domains``; ``<script src>``, ``<img src>``,
                 loading ``<link href>``, media, module imports and CSS ``url()`` outside ``resource_domains``;
                 ``<iframe src>`` outside ``frame_domains``; ``<base href>`` outside ``base_uri_domains``
  RF106 error    such a URL over ``http:`` or ``ws:``: declared domains are https origins only
  RF107 error    a secret in the page (the output guard's ``SECRET_TYPES``): every user can read the page
  RF108 warning  ``target="_blank"`` without ``rel="noopener"`` (or ``noreferrer``, which implies it), or
                 ``window.open`` without ``"noopener"``: the opened page gets a handle on the widget

Only literal absolute URLs are checked; a URL built at run time is the CSP's to stop. HTML is read
with the standard library's parser (tags, attributes and their lines); scripts are read with
regular expressions over their text, with comments blanked, and string contents blanked for the
call checks (so ``"alert("`` in a string is not a call). A JavaScript parser would be a large
dependency for checks that look for call shapes, and this runs offline on any widget. The price: a
regular-expression literal holding ``//`` hides the rest of its line (a missed finding, never a
false one).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlsplit

from ringfence.app import App
from ringfence.detect.redactor import Redactor
from ringfence.guards.output import SECRET_TYPES
from ringfence.review.lint import LintFinding, Severity
from ringfence.widgets import Widget

Raw = tuple[int, str, Severity, str]  # line, code, severity, message

# The labelled-secret type (``password = ...``) matches any assignment in a script; in a page it
# counts only when the value is a quoted literal. The other types are secret by their shape.
LABELLED = "SECRET"
_QUOTES = "\"'`"
_SCRIPT_TYPES = frozenset({"", "text/javascript", "application/javascript", "module", "text/ecmascript"})

# Element attributes that load something, and the CSP list that must allow it.
_LOADS = {("script", "src"): "resource", ("img", "src"): "resource", ("source", "src"): "resource",
          ("video", "src"): "resource", ("video", "poster"): "resource", ("audio", "src"): "resource",
          ("track", "src"): "resource", ("image", "href"): "resource", ("image", "xlink:href"): "resource",
          ("iframe", "src"): "frame", ("base", "href"): "base_uri"}
_LOADING_LINKS = frozenset({"stylesheet", "icon", "apple-touch-icon", "mask-icon", "preload", "modulepreload",
                            "prefetch", "manifest"})  # a <link rel="canonical"> names a page, loads nothing
_URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "xlink:href"})  # where a javascript: URL runs
# Event handler content attributes (HTML Living Standard, "event handlers"), by the start of their event names.
_HANDLER = re.compile(r"on(?:abort|after|animation|auxclick|before|blur|can|change|click|close|context|copy|cue|cut"
                      r"|dblclick|drag|drop|duration|emptied|end|error|focus|form|fullscreen|gotpointer|hash|input"
                      r"|invalid|key|language|load|lostpointer|message|mouse|offline|online|page|paste|pause|play"
                      r"|pointer|popstate|progress|rate|rejection|reset|resize|scroll|search|security|seek|select"
                      r"|selection|show|slot|stalled|storage|submit|suspend|time|toggle|touch|transition|unhandled"
                      r"|unload|volume|waiting|wheel)[a-z]*")
_DOMAINS_OPTION = {"connect": "connect_domains", "resource": "resource_domains", "frame": "frame_domains",
                   "base_uri": "base_uri_domains"}

# JavaScript: comments and string literals, in one pass, so that each is seen for what it is.
_JS_TOKEN = re.compile(r"//[^\n]*|/\*.*?(?:\*/|\Z)|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`",
                       re.DOTALL)
_NOT_AFTER = r"(?<![\w$.])"  # not part of a longer name, not a method of another object
_GLOBAL = r"(?:(?:window|self|globalThis|top|parent)\s*\.\s*)?"
_DIALOG = re.compile(rf"{_NOT_AFTER}{_GLOBAL}(alert|prompt|confirm)\s*\(")
_DEFINED = re.compile(r"\bfunction\s*\*?\s*$")
_CLIPBOARD = re.compile(r"\bnavigator\s*\.\s*clipboard\b")
_CLIPBOARD_COMMAND = re.compile(r"\bexecCommand\s*\(\s*[\"'`]\s*(?:copy|cut|paste)\b", re.IGNORECASE)
_CODE_FROM_TEXT = re.compile(rf"{_NOT_AFTER}{_GLOBAL}(?P<name>eval)\s*\(|{_NOT_AFTER}(?:new\s+)?(?P<ctor>Function)\s*\("
                             rf"|{_NOT_AFTER}{_GLOBAL}(?P<timer>set(?:Timeout|Interval))\s*\(\s*[\"'`]")
_REQUESTS = re.compile(rf"{_NOT_AFTER}{_GLOBAL}fetch\s*\(\s*(?=[\"'`])"
                       r"|\bnew\s+(?:WebSocket|EventSource)\s*\(\s*(?=[\"'`])"
                       r"|\.\s*open\s*\(\s*[\"'][^\"'\n]*[\"']\s*,\s*(?=[\"'`])"  # XMLHttpRequest: open(method, url)
                       r"|\bnavigator\s*\.\s*sendBeacon\s*\(\s*(?=[\"'`])")
_IMPORTS = re.compile(rf"{_NOT_AFTER}import\s*\(\s*(?=[\"'`])|\b(?:import|from)\s+(?=[\"'])")
_WINDOW_OPEN = re.compile(rf"{_NOT_AFTER}(?:window|self|globalThis)\s*\.\s*open\s*\(")
_LITERAL = re.compile(r"[\"'`]([^\"'`]*)[\"'`]")
_CSS_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)", re.DOTALL)
_CSS_URL = re.compile(r"\burl\(\s*[\"']?([^\"')\s]+)|@import\s+[\"']([^\"']+)", re.IGNORECASE)


@dataclass(frozen=True)
class _Tag:
    name: str
    attributes: dict[str, str]
    line: int
    text: str  # the start tag as written, to place each attribute on its own line

    def line_of(self, attribute: str) -> int:
        match = re.search(rf"(?<![\w:-]){re.escape(attribute)}\s*=", self.text, re.IGNORECASE)
        return self.line + (self.text.count("\n", 0, match.start()) if match else 0)


@dataclass(frozen=True)
class _Source:
    """A script, a style sheet or an inline ``style=``/handler value, and the page line it starts on."""

    kind: str  # "script" or "style"
    text: str
    line: int

    def line_at(self, offset: int) -> int:
        return self.line + self.text.count("\n", 0, offset)


class _Page(HTMLParser):
    """The page's tags with their attributes and lines, and its scripts and styles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[_Tag] = []
        self.sources: list[_Source] = []
        self._open: tuple[str, str | None] | None = None  # the script or style being read, and its kind
        self._chunks: list[str] = []
        self._start_line = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        tag_ = _Tag(tag, {name: value or "" for name, value in attrs}, self.getpos()[0], self.get_starttag_text() or "")
        self.tags.append(tag_)
        for name, value in tag_.attributes.items():
            if name == "style":
                self.sources.append(_Source("style", value, tag_.line_of(name)))
            elif _HANDLER.fullmatch(name):
                self.sources.append(_Source("script", value, tag_.line_of(name)))
            elif name in _URL_ATTRIBUTES and value.lstrip().lower().startswith("javascript:"):
                self.sources.append(_Source("script", value.lstrip()[len("javascript:"):], tag_.line_of(name)))
        if tag == "script":
            kind = "script" if tag_.attributes.get("type", "").strip().lower() in _SCRIPT_TYPES else None
            self._open, self._chunks, self._start_line = (tag, kind), [], self.getpos()[0]
        elif tag == "style":
            self._open, self._chunks, self._start_line = (tag, "style"), [], self.getpos()[0]

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            if not self._chunks:
                self._start_line = self.getpos()[0]
            self._chunks.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._open is not None and self._open[0] == tag:
            kind = self._open[1]
            if kind is not None:  # a JSON or template block is data, not script
                self.sources.append(_Source(kind, "".join(self._chunks), self._start_line))
            self._open = None


def lint_widgets(app: App) -> list[LintFinding]:
    """Every finding for every widget the app declares, by widget, then line, then code."""
    return [finding for widget in app.widgets.values() for finding in lint_widget(widget)]


def lint_widget(widget: Widget) -> list[LintFinding]:
    """Every finding for one widget, by line, then code; ``tool`` names the widget, ``file`` its HTML."""
    page = _Page()
    page.feed(widget.html)
    page.close()
    raw = [*_check_tags(widget, page), *_check_secrets(widget)]
    for source in page.sources:
        raw += _check_script(widget, source) if source.kind == "script" else _check_style(widget, source)
    return [LintFinding(code, severity, f"widget {widget.name}", message, widget.source, line)
            for line, code, severity, message in sorted(set(raw))]


def _check_tags(widget: Widget, page: _Page) -> Iterator[Raw]:
    for tag in page.tags:
        for name, value in tag.attributes.items():
            if _HANDLER.fullmatch(name):
                yield tag.line_of(name), "RF104", "warning", (
                    f"inline event handler {name}= on <{tag.name}>: attach it with addEventListener in a script "
                    "(a CSP that allows inline script by nonce or hash blocks handlers in markup)")
            elif name in _URL_ATTRIBUTES and value.lstrip().lower().startswith("javascript:"):
                yield tag.line_of(name), "RF104", "warning", (
                    f"a javascript: URL in {name}= on <{tag.name}>: attach a listener in a script instead")
        for (element, attribute), kind in _LOADS.items():
            if tag.name == element and tag.attributes.get(attribute):
                yield from _check_url(widget, tag.attributes[attribute], kind, f"<{tag.name} {attribute}>",
                                      tag.line_of(attribute))
        if tag.name == "link" and _LOADING_LINKS & set(tag.attributes.get("rel", "").lower().split()):
            yield from _check_url(widget, tag.attributes.get("href", ""), "resource", "<link href>",
                                  tag.line_of("href"))
        if tag.name in ("img", "source") and tag.attributes.get("srcset"):
            for candidate in tag.attributes["srcset"].split(","):
                yield from _check_url(widget, (candidate.split() or [""])[0], "resource", f"<{tag.name} srcset>",
                                      tag.line_of("srcset"))
        rel = set(tag.attributes.get("rel", "").lower().split())
        if tag.attributes.get("target", "").strip().lower() == "_blank" and not rel & {"noopener", "noreferrer"}:
            yield tag.line_of("target"), "RF108", "warning", (
                f'<{tag.name} target="_blank"> without rel="noopener": the page it opens can reach back into the '
                'widget (window.opener); add rel="noopener", or open links with window.openai.openExternal')


def _check_script(widget: Widget, script: _Source) -> Iterator[Raw]:
    plain, bare = _blank_js(script.text)  # comments blanked; comments and string contents blanked
    for match in _DIALOG.finditer(bare):
        if not _is_definition(bare, match):
            yield script.line_at(match.start()), "RF101", "error", (
                f"{match.group(1)}() opens a dialog, which the Apps SDK forbids in widgets; show the message or "
                "the question in the page")
    for match in [*_CLIPBOARD.finditer(bare), *_CLIPBOARD_COMMAND.finditer(plain)]:
        yield script.line_at(match.start()), "RF102", "error", (
            "the clipboard is forbidden in widgets (Apps SDK); show the text so the user can select it")
    for match in _CODE_FROM_TEXT.finditer(bare):
        name = match.group("name") or match.group("ctor") or match.group("timer")
        what = f"a string given to {name}" if match.group("timer") else f"{name}()"
        yield script.line_at(match.start()), "RF103", "error", (
            f"{what} runs text as code; call a function instead")
    for pattern, kind, what in ((_REQUESTS, "connect", "a request to"), (_IMPORTS, "resource", "an import of")):
        for match in pattern.finditer(bare):
            literal = _LITERAL.match(plain, match.end())
            if literal is not None:
                yield from _check_url(widget, literal.group(1), kind, what, script.line_at(match.start()))
    for match in _WINDOW_OPEN.finditer(bare):  # window.open; a bare open() is the page's own function
        arguments = plain[match.end():_closing(bare, match.end() - 1)]
        if "noopener" not in arguments and "noreferrer" not in arguments:
            yield script.line_at(match.start()), "RF108", "warning", (
                'window.open without "noopener": the page it opens can reach back into the widget '
                '(window.opener); pass "noopener", or open links with window.openai.openExternal')


def _check_style(widget: Widget, style: _Source) -> Iterator[Raw]:
    css = _CSS_COMMENT.sub(lambda match: _blank(match.group()), style.text)
    for match in _CSS_URL.finditer(css):
        url = match.group(1) or match.group(2)
        yield from _check_url(widget, url, "resource", "a CSS url()", style.line_at(match.start()))


def _check_secrets(widget: Widget) -> Iterator[Raw]:
    html = widget.html
    line_starts = [0, *(index + 1 for index, char in enumerate(html) if char == "\n")]
    kinds: dict[int, set[str]] = {}
    for finding in Redactor(types=SECRET_TYPES).find(html):
        if finding.type == LABELLED and not _quoted(html, finding.start, finding.end):
            continue
        kinds.setdefault(bisect.bisect_right(line_starts, finding.start), set()).add(finding.type)
    for line, types in kinds.items():
        named = ", ".join(sorted("quoted password or token" if kind == LABELLED else kind for kind in types))
        yield line, "RF107", "error", (
            f"a secret ({named}) is written in the page, which every user can read; keep it on the server and "
            "call a tool that uses it")


def _check_url(widget: Widget, url: str, kind: str, what: str, line: int) -> Iterator[Raw]:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme in ("http", "ws"):
        yield line, "RF106", "error", (f"{what} {url} is not over https; serve it over https and declare its "
                                       f"origin in {_DOMAINS_OPTION[kind]}")
        return
    if scheme not in ("https", "wss") or not parts.hostname:
        return  # relative, data:, blob:: nothing to declare
    try:
        port = parts.port
    except ValueError:
        return
    origin = f"https://{parts.hostname}" + (f":{port}" if port not in (None, 443) else "")
    if not any(_allows(allowed, origin) for allowed in getattr(widget, kind)):
        yield line, "RF105", "error", (f"{what} {url} is outside the widget's CSP, so the host blocks it; add "
                                       f"{origin} to {_DOMAINS_OPTION[kind]} if the widget needs it")


def _allows(allowed: str, origin: str) -> bool:
    """CSP host-source matching (wss:// is matched as https://): ``https://*.example.com`` allows any
    subdomain, not example.com itself."""
    if allowed.startswith("https://*."):
        suffix = allowed[len("https://*"):]  # ".example.com", with the port if one is declared
        host = origin[len("https://"):]
        return host.endswith(suffix) and len(host) > len(suffix)
    return origin == allowed


def _blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


def _blank_js(code: str) -> tuple[str, str]:
    """The code with comments blanked, and with string contents blanked too; offsets and lines unchanged."""
    plain, bare, last = [], [], 0
    for match in _JS_TOKEN.finditer(code):
        token = match.group()
        plain.append(code[last:match.start()])
        bare.append(code[last:match.start()])
        if token[0] in _QUOTES:
            plain.append(token)
            bare.append(token[0] + _blank(token[1:-1]) + token[-1])
        else:
            plain.append(_blank(token))
            bare.append(_blank(token))
        last = match.end()
    plain.append(code[last:])
    bare.append(code[last:])
    return "".join(plain), "".join(bare)


def _closing(code: str, opening: int) -> int:
    """The offset of the parenthesis closing the one at ``opening`` (the end of the code if none)."""
    depth = 0
    for index in range(opening, len(code)):
        if code[index] == "(":
            depth += 1
        elif code[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    return len(code)


def _is_definition(code: str, match: re.Match[str]) -> bool:
    """``function confirm(...)`` or a method ``confirm(...) {``: a definition, not a call."""
    if _DEFINED.search(code, 0, match.start()):
        return True
    after = _closing(code, match.end() - 1) + 1
    return re.match(r"\s*\{", code[after:]) is not None


def _quoted(text: str, start: int, end: int) -> bool:
    return start > 0 and end < len(text) and text[start - 1] in _QUOTES and text[end] == text[start - 1]
