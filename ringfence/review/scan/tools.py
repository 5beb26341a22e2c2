"""Tools as the server lists them: annotation hints, names against hints, descriptions, securitySchemes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mcp.types import Tool
from pydantic import ValidationError

from ringfence.review.lint import DELETE_VERBS, PAY_VERBS, SEND_VERBS, lint_listed, name_verb
from ringfence.review.report import Finding
from ringfence.review.scan import catalogue as c
from ringfence.review.scan.calls import declared_schemes, declared_scopes
from ringfence.review.scan.context import ScanContext, failed, passed, skipped

HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")


def run(ctx: ScanContext) -> Iterator[Finding]:
    checks = (c.ANNOTATIONS_PRESENT, c.ANNOTATIONS_CONSISTENT, c.DESCRIPTION_LINT, c.SECURITY_SCHEMES)
    if not ctx.tools:
        why = ("tools/list needs a token; pass --token" if ctx.anonymous_session is None and ctx.token is None
               else "the server lists no tools")
        for check in checks:
            yield skipped(check, why, ctx.url)
        return
    yield from _check_hints(ctx)
    yield from _check_descriptions(ctx)
    yield from _check_schemes(ctx)


def _annotations(tool: dict[str, Any]) -> dict[str, Any]:
    annotations = tool.get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def _check_hints(ctx: ScanContext) -> Iterator[Finding]:
    missing = {tool["name"]: [hint for hint in HINTS if not isinstance(_annotations(tool).get(hint), bool)]
               for tool in ctx.tools}
    missing = {name: hints for name, hints in missing.items() if hints}
    if missing:
        yield failed(c.ANNOTATIONS_PRESENT, "; ".join(f"{name} lacks {', '.join(hints)}"
                                                      for name, hints in missing.items()),
                     *(f"tools/list -> {name}.annotations={_annotations(ctx.tool(name))!r}" for name in
                       list(missing)[:3]), location=ctx.url)
    else:
        yield passed(c.ANNOTATIONS_PRESENT, f"{len(ctx.tools)} tools set all four hints", ctx.url)
    contradictions = [(tool["name"], why) for tool in ctx.tools if (why := _contradiction(tool))]
    if contradictions:
        yield failed(c.ANNOTATIONS_CONSISTENT, "; ".join(f"{name}: {why}" for name, why in contradictions),
                     *(f"tools/list -> {name}.annotations={_annotations(ctx.tool(name))!r}" for name, _ in
                       contradictions[:3]), location=ctx.url)
    else:
        yield passed(c.ANNOTATIONS_CONSISTENT, "names and hints agree", ctx.url)


def _contradiction(tool: dict[str, Any]) -> str:
    """Why the hints understate what the name says the tool does, or ''. Spec defaults apply to absent hints
    (MCP tools: readOnlyHint false, destructiveHint true, openWorldHint true), so only explicit ones count."""
    hints = _annotations(tool)
    verb = name_verb(tool["name"])
    if verb in DELETE_VERBS:
        if hints.get("readOnlyHint") is True:
            return f'named "{verb}" but readOnlyHint is true'
        if hints.get("destructiveHint") is False:
            return f'named "{verb}" but destructiveHint is false'
    if verb in SEND_VERBS or verb in PAY_VERBS:
        if hints.get("readOnlyHint") is True:
            return f'named "{verb}" but readOnlyHint is true'
        if hints.get("openWorldHint") is False:
            return f'named "{verb}", which reaches beyond the user\'s account, but openWorldHint is false'
    return ""


def _check_descriptions(ctx: ScanContext) -> Iterator[Finding]:
    listed = []
    for tool in ctx.tools:
        try:
            listed.append(Tool.model_validate(tool))
        except ValidationError:
            continue
    findings = lint_listed(listed)
    errors = [finding for finding in findings if finding.severity == "error"]
    if findings:
        yield failed(c.DESCRIPTION_LINT, "; ".join(f"{f.code} {f.tool}: {f.message}" for f in findings),
                     *(f"tools/list -> {f.tool}.description={(ctx.tool(f.tool).get('description') or '')[:200]!r}"
                       for f in findings[:2]), location=ctx.url, severity=None if errors else "low")
    else:
        yield passed(c.DESCRIPTION_LINT, f"{len(listed)} descriptions lint clean", ctx.url)


def _check_schemes(ctx: ScanContext) -> Iterator[Finding]:
    if not ctx.protected:
        yield skipped(c.SECURITY_SCHEMES, "the server asks for no token", ctx.url)
        return
    undeclared = [tool["name"] for tool in ctx.tools if declared_schemes(tool) is None]
    advertised = (ctx.resource_metadata or {}).get("scopes_supported")
    unknown: dict[str, set[str]] = {}
    if isinstance(advertised, list):
        for tool in ctx.tools:
            extra = (declared_scopes(tool) or set()) - set(advertised)
            if extra:
                unknown[tool["name"]] = extra
    problems = []
    if undeclared:
        problems.append("no securitySchemes: " + ", ".join(undeclared))
    if unknown:
        problems.append("scopes the metadata does not advertise: " + "; ".join(
            f"{name} ({', '.join(sorted(scopes))})" for name, scopes in unknown.items()))
    if problems:
        yield failed(c.SECURITY_SCHEMES, "; ".join(problems), f"scopes_supported={advertised!r}", location=ctx.url)
    else:
        yield passed(c.SECURITY_SCHEMES, "every tool declares its schemes", ctx.url)
