"""Lint of the text a model reads about each tool, and of declarations that contradict the tool's name.

Tool descriptions and parameter descriptions are instructions to the model as much as
documentation, which makes them the place for tool poisoning: hidden instructions, requests to
read secrets, orders to call other tools, to shadow another server's tools, or to keep the user in
the dark. Each check has a stable code and a message that says how to fix it:

  RF001 error    prompt-injection patterns (the injection detector, plus pseudo-tags such as
                 ``<IMPORTANT>`` and paths of secrets such as ``~/.ssh/id_rsa``); the detector's
                 learned model counts only beside a rule's finding, since a description addresses
                 the model by design (``description_detector``)
  RF002 error    hidden characters (zero-width, bidi controls, tag characters, controls)
  RF003 error    instructions to keep something from the user
  RF004 warning  instructions to call tools or chain calls
  RF005 error    references to tools this app does not have (another server's tools)
  RF006 warning  a read tool requiring a scope broader than a declared one it implies
  RF007 error    a name that deletes, sends, publishes or pays declared with a weaker effect
         warning a sending, publishing or paying tool not declared ``open_world``
  RF008 error    no description; warning: a description too short to say what the tool does
  RF009 error    an ``open_world`` write that does not say whether it can be undone (``irreversible=``)
         warning a write named for sending, publishing or paying that does not say it

False positives are kept low on purpose (the benign corpus in ``tests/review/corpus.py`` must lint clean):
every check needs an instruction-shaped phrase, not a single alarming word.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mcp.types import Tool

from ringfence.app import App
from ringfence.detect.injection import InjectionDetector
from ringfence.detect.invisible import hides_text
from ringfence.detect.normalize import fold
from ringfence.review.tools import ReviewedTool, reviewed_tools

Severity = Literal["error", "warning"]
MIN_DESCRIPTION_LENGTH = 20


@dataclass(frozen=True)
class LintFinding:
    """One problem with one tool: a stable code, how bad it is, and a sentence saying how to fix it."""

    code: str
    severity: Severity
    tool: str
    message: str
    file: str | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "tool": self.tool,
            "message": self.message,
            "file": self.file,
            "line": self.line,
        }


def description_detector() -> InjectionDetector:
    """The injection detector for what a model reads about a tool (RF001): rules and the shipped model,
    whose finding never stands alone there. Descriptions tell the model what to do by design, and real
    ones score high on the model on their own (the fetch server's: "this tool now grants you internet
    access"); beside a rule's finding the model's still counts."""
    return InjectionDetector(model_alone=False)


def lint_app(app: App, detector: InjectionDetector | None = None) -> list[LintFinding]:
    """Every finding for every tool of ``app``, in declaration order, then by code."""
    detector = detector or description_detector()
    tools = reviewed_tools(app)
    known_tools = {tool.name.lower() for tool in tools}
    known_fields = {name.lower() for tool in tools for name in _field_names(tool.listed)}
    findings: list[LintFinding] = []
    for tool in tools:
        file, line = tool.source
        raw = [
            *_check_texts(tool.listed, detector),
            *_check_tool_references(tool.listed, known_tools, known_fields),
            *_check_scopes(tool, app),
            *_check_name_effect(tool),
            *_check_irreversible(tool),
            *_check_description_length(tool.listed),
        ]
        findings.extend(
            LintFinding(code, severity, tool.name, message, file, line)
            for code, severity, message in sorted(raw, key=lambda item: item[0])
        )
    return findings


# --- what the model reads -------------------------------------------------------------------------


def lint_listed(tools: Sequence[Tool], detector: InjectionDetector | None = None) -> list[LintFinding]:
    """The checks of what a model reads (RF001-RF005, RF008) on tools as a server lists them: for a server
    whose code is not at hand (``ringfence scan``)."""
    detector = detector or description_detector()
    known_tools = {tool.name.lower() for tool in tools}
    known_fields = {name.lower() for tool in tools for name in _field_names(tool)}
    findings: list[LintFinding] = []
    for tool in tools:
        raw = [*_check_texts(tool, detector), *_check_tool_references(tool, known_tools, known_fields),
               *_check_description_length(tool)]
        findings.extend(LintFinding(code, severity, tool.name, message)
                        for code, severity, message in sorted(raw, key=lambda item: item[0]))
    return findings


def _texts(listed: Tool) -> Iterator[tuple[str, str]]:
    """(where, text) for every string a model reads about the tool."""
    if listed.title:
        yield "title", listed.title
    if listed.description:
        yield "description", listed.description
    yield from _schema_descriptions(listed.input_schema or {}, "parameter", "")
    yield from _schema_descriptions(listed.output_schema or {}, "output field", "")


def _schema_descriptions(schema: Any, kind: str, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(schema, list):
        for item in schema:
            yield from _schema_descriptions(item, kind, path)
        return
    if not isinstance(schema, Mapping):
        return
    description = schema.get("description")
    if isinstance(description, str) and description:
        yield (f"description of {kind} `{path}`" if path else f"{kind}s description"), description
    for name, child in (schema.get("properties") or {}).items():
        yield from _schema_descriptions(child, kind, f"{path}.{name}" if path else str(name))
    for name, child in (schema.get("$defs") or {}).items():
        yield from _schema_descriptions(child, kind, f"$defs.{name}")
    for key in ("items", "anyOf", "oneOf", "allOf", "additionalProperties", "prefixItems"):
        yield from _schema_descriptions(schema.get(key), kind, path)


def _field_names(listed: Tool) -> Iterator[str]:
    """Parameter and output field names, which descriptions may mention freely."""
    pending: list[Any] = [listed.input_schema, listed.output_schema]
    while pending:
        node = pending.pop()
        if isinstance(node, Mapping):
            properties = node.get("properties")
            if isinstance(properties, Mapping):
                yield from (str(name) for name in properties)
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)


# Tool-description poisoning the output-side detector is not built for.
_PSEUDO_TAG = re.compile(
    r"<\s*/?\s*(?:important|system|instructions?|secret|hidden|admin|critical|ai[_ -]?instructions?"
    r"|note[_ ]to[_ ](?:ai|assistant|model))\s*>"
)
_SECRET_FILE = re.compile(
    r"(?:~|\$home|%userprofile%)?/?\.ssh\b|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|/etc/(?:passwd|shadow)\b"
    r"|\.aws/credentials|\.git-credentials|\.netrc\b|\.npmrc\b|\.pypirc\b|\.kube/config|\.docker/config\.json"
    r"|\bmcp\.json\b|claude_desktop_config|\.cursor/|\.gnupg\b|\bwallet\.dat\b|(?:^|[\s`'\"/~])\.env\b"
)
_SECRET_FILE_VERB = re.compile(
    r"\b(?:read|cat|open|load|send|pass|include|upload|attach|copy|provide|fetch|extract|add|append|put|post)\w{0,3}\b"
)

# Keeping the user in the dark, beyond the detector's ``concealment`` rules.
_CONCEAL = re.compile(
    r"\bhide\s+(?:this|it|these|that|them|the\s+\w+)\s+from\s+(?:the\s+)?(?:user|human)s?\b"
    r"|\b(?:user|human)s?\s+(?:must|should|need|needs|does|do|will)\s*(?:not|n't|never)\s+(?:\w+\s+)?"
    r"(?:know|see|notice|learn|find\s+out|be\s+(?:told|informed|notified|aware|shown))\b"
    r"|\b(?:no\s+need|not\s+necessary|unnecessary)\s+to\s+(?:tell|inform|notify|mention|ask|alert)\w*\s+(?:\w+\s+){0,2}?"
    r"(?:the\s+)?(?:user|human)s?\b"
    r"|\b(?:invisible|not\s+visible|hidden)\s+(?:to|from)\s+(?:the\s+)?(?:user|human)s?\b"
    r"|\b(?:do\s+not|don'?t|never)\s+(?:mention|reveal|disclose|admit|say|tell\s+(?:anyone|them))\s+(?:that|how|why|where)\b"
    r"|\b(?:silently|secretly|covertly|quietly)\s+(?:\w+\s+)?(?:read|collect|log|record|forward|include|attach|pass)\b"
)

# Orders to call tools or chain calls.
_REF = r"(?:the\s+)?[`'\"]?[a-z][\w.-]{1,63}[`'\"]?(?:\s+(?:tool|function))?"
_CHAIN = re.compile(
    rf"\b(?:always|must|should|need\s+to|have\s+to|required\s+to)\s+(?:first\s+|always\s+)?(?:call|invoke|execute|trigger)"
    rf"\s+{_REF}"
    rf"|\b(?:call|invoke|execute|run|use)\s+{_REF}\s+(?:first|beforehand)\b"
    rf"|\bbefore\s+(?:using|calling|invoking|running|executing)\s+(?:this|the|any)\s+(?:\w+\s+)?(?:tool|function)s?"
    rf"\s*,?\s+(?:you\s+)?(?:must\s+|should\s+|always\s+|need\s+to\s+|have\s+to\s+)?(?:first\s+)?"
    rf"(?:call|invoke|run|execute|use|read|fetch|send|get|open|check|look\s+up)\b"
    rf"|\b(?:then|afterwards|after\s+that|next)\s*,?\s+(?:you\s+)?(?:must\s+|should\s+|always\s+)?(?:call|invoke)\b"
    rf"|\b(?:after|once)\s+(?:using|calling|invoking|running)\s+this\s+(?:tool|function)\s*,?\s+(?:you\s+)?"
    rf"(?:must\s+|should\s+|always\s+)?(?:call|invoke|run|execute|send|use)\b"
    rf"|\bwhen(?:ever)?\s+{_REF}\s+(?:is|gets|are)\s+(?:called|used|invoked|run)\b"
    rf"|\b(?:call|invoke|use)\s+this\s+(?:tool|function)\s+(?:before|after|first)\b"
    rf"|\b(?:must|should)\s+(?:always\s+)?be\s+(?:called|invoked|used)\s+(?:first|before|after)\b"
)

# Names of tools, recognised by the shape of the reference rather than by a list.
_SNAKE = r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+"
_TOOL_REFERENCE = re.compile(
    rf"(?<![\w.])(?P<call>{_SNAKE})\s*\("  # ``module.function(`` is code, not a tool
    rf"|[`'\"](?P<quoted>[a-z][\w.-]{{1,63}})[`'\"]\s+(?:tool|function|action)s?\b"
    rf"|\bthe\s+(?P<bare>{_SNAKE})\s+(?:tool|function|action)s?\b"
    rf"|\b(?:call|invoke|execute|trigger)\w{{0,3}}\s+(?:the\s+)?[`'\"]?(?P<verb>{_SNAKE})\b"
    rf"|\bfunctions\.(?P<namespaced>[a-z]\w{{0,63}})"
)


def _check_texts(tool: Tool, detector: InjectionDetector) -> Iterator[tuple[str, Severity, str]]:
    for where, text in _texts(tool):
        folded = fold(text).text
        verdict = detector.scan(text)
        poisoning = _poisoning(folded)
        if verdict.is_injection or poisoning:
            rules = sorted({finding.rule for finding in verdict.findings} | set(poisoning))
            yield "RF001", "error", (
                f"the {where} reads like a prompt injection ({', '.join(rules)}); "
                "describe only what the tool does and remove instructions addressed to the model."
            )
        if hides_text(text):  # by Unicode property; an emoji's own selector or joiner hides nothing
            yield "RF002", "error", (
                f"the {where} contains invisible or control characters that can hide text; "
                "delete them (zero-width, bidirectional and tag characters)."
            )
        concealment = any(finding.category == "concealment" for finding in verdict.findings)
        if concealment or _CONCEAL.search(folded):
            yield "RF003", "error", (
                f"the {where} asks to keep something from the user; "
                "remove it, since a tool must never ask the model to hide its actions."
            )
        if _CHAIN.search(folded):
            yield "RF004", "warning", (
                f"the {where} tells the model to call tools or chain calls; "
                "describe the inputs this tool needs and where they come from instead."
            )
    for where, name in [("name", tool.name), *((f"parameter name `{n}`", n) for n in _field_names(tool))]:
        if hides_text(name):
            yield "RF002", "error", (
                f"the {where} contains invisible or control characters; use plain letters, digits and '_'."
            )


def _poisoning(folded: str) -> list[str]:
    rules = []
    if _PSEUDO_TAG.search(folded):
        rules.append("pseudo_tag")
    match = _SECRET_FILE.search(folded)
    if match and _SECRET_FILE_VERB.search(folded, max(0, match.start() - 80), match.end() + 80):
        rules.append("secret_file")
    return rules


def _check_tool_references(
    tool: Tool, known_tools: set[str], known_fields: set[str]
) -> Iterator[tuple[str, Severity, str]]:
    unknown: dict[str, str] = {}
    for where, text in _texts(tool):
        for match in _TOOL_REFERENCE.finditer(fold(text).text):
            name = next(group for group in match.groups() if group)
            if name not in known_tools and name not in known_fields and name != tool.name.lower():
                unknown.setdefault(name, where)
    for name, where in unknown.items():
        yield "RF005", "error", (
            f"the {where} refers to a tool `{name}` that this app does not have; "
            "remove references to other servers' tools (a tool must not steer how other tools are used)."
        )


# --- declarations -----------------------------------------------------------------------------------


def _check_scopes(tool: ReviewedTool, app: App) -> Iterator[tuple[str, Severity, str]]:
    if tool.spec.effect != "read":
        return
    for name in sorted(tool.spec.scopes):
        scope = app.scopes.get(name)
        if scope is not None and scope.implies:
            narrower = ", ".join(f'"{implied}"' for implied in scope.implies)
            yield "RF006", "warning", (
                f'this read tool requires "{name}", which also grants {narrower}; '
                f"require the narrowest scope that covers reading ({narrower}) instead."
            )


DELETE_VERBS = frozenset({"delete", "remove", "drop", "purge", "wipe", "destroy", "erase", "truncate", "unlink",
                          "trash", "shred", "nuke", "rm", "del"})
SEND_VERBS = frozenset({"send", "post", "publish", "tweet", "email", "mail", "broadcast", "notify", "forward", "reply",
                        "share", "sms", "dm"})
PAY_VERBS = frozenset({"pay", "transfer", "charge", "refund", "withdraw", "purchase", "buy", "checkout"})
_QUALIFIERS = frozenset({"bulk", "batch", "force", "hard", "mass", "permanently", "auto", "safe", "soft"})


def name_verb(name: str) -> str:
    """The verb a tool name starts with (``bulk_delete_rows`` -> ``delete``, ``sendEmail`` -> ``send``)."""
    words = [w.lower() for w in re.split(r"[_.\-\s]+|(?<=[a-z0-9])(?=[A-Z])", name) if w]
    if len(words) > 1 and words[0] in _QUALIFIERS:
        return words[1]
    return words[0] if words else ""


def _check_name_effect(tool: ReviewedTool) -> Iterator[tuple[str, Severity, str]]:
    spec = tool.spec
    verb = name_verb(spec.name)
    if verb in DELETE_VERBS and spec.effect != "destructive":
        yield "RF007", "error", (
            f'the name says it deletes ("{verb}") but the tool is declared effect="{spec.effect}"; '
            'declare effect="destructive" so hosts ask the user first, or rename the tool.'
        )
    elif verb in SEND_VERBS or verb in PAY_VERBS:
        action = "pays or moves money" if verb in PAY_VERBS else "sends or publishes"
        if spec.effect == "read":
            yield "RF007", "error", (
                f'the name says it {action} ("{verb}") but the tool is declared effect="read"; '
                'declare effect="write" (or "destructive") and open_world=True, or rename the tool.'
            )
        elif not spec.open_world:
            yield "RF007", "warning", (
                f'the name says it {action} ("{verb}"), which reaches beyond the user\'s account; '
                "declare open_world=True."
            )


# Verbs whose effect usually cannot be called back: a message is read, money is gone, once done.
_CANNOT_UNDO = (SEND_VERBS - {"share"}) | PAY_VERBS


def _check_irreversible(tool: ReviewedTool) -> Iterator[tuple[str, Severity, str]]:
    """A write that reaches outside the user's account (a sent e-mail, a payment) and does not say whether
    it can be undone runs unconfirmed: an error, since only the author knows. A write whose name sends or
    pays, not declared open-world, gets a warning (names guess; ``irreversible=False`` silences it)."""
    spec = tool.spec
    if spec.effect != "write" or spec.irreversible is not None:
        return
    fix = ("declare irreversible=True (each call is then confirmed by the user, like a destructive tool) "
           "or irreversible=False if it can be undone.")
    if spec.open_world:
        yield "RF009", "error", (
            "this write reaches outside the user's account (open_world=True) but does not say whether it can be "
            f"undone, so it runs without the user's confirmation; {fix}"
        )
    elif (verb := name_verb(spec.name)) in _CANNOT_UNDO:
        yield "RF009", "warning", (
            f'the name says it sends or pays ("{verb}"), which usually cannot be undone, but the write does not '
            f"say whether it can; {fix}"
        )


def _check_description_length(tool: Tool) -> Iterator[tuple[str, Severity, str]]:
    description = (tool.description or "").strip()
    if not description:
        yield "RF008", "error", (
            "the tool has no description; add a docstring saying what it does and what it changes, "
            "which the model and app reviewers rely on."
        )
    elif len(description) < MIN_DESCRIPTION_LENGTH:
        yield "RF008", "warning", (
            f"the description is shorter than {MIN_DESCRIPTION_LENGTH} characters; "
            "say what the tool does, to what, and what it changes."
        )
