"""Calling a tool without letting it act, and reading what the answer means.

The scanner never runs a tool that could change data: it calls a tool with arguments its own input
schema refuses (a required field left out, or a field of the wrong type), so a server that checks the
caller first answers with a refusal and one that does not answers with a validation error, and the
tool's code runs in neither case. A tool without parameters is called only when it says it is
read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ringfence.review.scan.wire import Answer, challenge_parameters

SCHEMES_KEY = "securitySchemes"
_WRONG_TYPE: dict[str, Any] = {"string": {"ringfence-scan": 1}, "integer": "ringfence-scan", "number": "x",
                               "boolean": "ringfence-scan", "array": "ringfence-scan", "object": "ringfence-scan"}

Kind = Literal["refused", "refused-without-challenge", "ran", "server-error", "unclear"]


@dataclass(frozen=True)
class CallOutcome:
    """What a tool call's answer shows: refused (with the challenge's parameters), ran, or a server error."""

    kind: Kind
    status: int
    challenge: dict[str, str]
    form: str  # "http", "tool-result" or ""
    header: str = ""  # the challenge as sent


def harmless_arguments(tool: dict[str, Any]) -> dict[str, Any] | None:
    """Arguments the tool's schema refuses, or ``{}`` for a read-only tool; None when neither is possible."""
    schema = tool.get("inputSchema")
    schema = schema if isinstance(schema, dict) else {}
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = [name for name in schema.get("required", []) if isinstance(name, str)] if isinstance(
        schema.get("required"), list) else []
    if required:
        return {}  # a required field missing
    for name, definition in properties.items():
        kind = definition.get("type") if isinstance(definition, dict) else None
        if isinstance(kind, str) and kind in _WRONG_TYPE:
            return {name: _WRONG_TYPE[kind]}
    annotations = tool.get("annotations") if isinstance(tool.get("annotations"), dict) else {}
    if annotations.get("readOnlyHint") is True:
        return {}
    return None


def declared_schemes(tool: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The tool's securitySchemes (top level or in ``_meta``), or None when it declares none."""
    meta = tool.get("_meta") if isinstance(tool.get("_meta"), dict) else {}
    schemes = tool.get(SCHEMES_KEY, meta.get(SCHEMES_KEY))
    if not isinstance(schemes, list):
        return None
    return [scheme for scheme in schemes if isinstance(scheme, dict)]


def declared_scopes(tool: dict[str, Any]) -> set[str] | None:
    """The OAuth scopes the tool declares it needs; None when it declares no oauth2 scheme."""
    schemes = declared_schemes(tool) or []
    oauth = [scheme for scheme in schemes if scheme.get("type") == "oauth2"]
    if not oauth:
        return None
    return {scope for scheme in oauth for scope in scheme.get("scopes", []) if isinstance(scope, str)}


def is_public(tool: dict[str, Any]) -> bool:
    return any(scheme.get("type") == "noauth" for scheme in declared_schemes(tool) or [])


_AUTH_WORDS = ("auth", "token", "credential", "scope", "permission", "forbidden", "sign in", "log in", "login")


def classify(answer: Answer) -> CallOutcome:
    """Read one ``tools/call`` answer."""
    exchange = answer.exchange
    if exchange.status >= 500:
        return CallOutcome("server-error", exchange.status, {}, "")
    header = exchange.header("www-authenticate")
    if exchange.status in (401, 403):
        return CallOutcome("refused" if header else "refused-without-challenge", exchange.status,
                           challenge_parameters(header), "http", header)
    if exchange.status >= 400:
        return CallOutcome("unclear", exchange.status, {}, "")
    result, error = answer.result, answer.error
    if result is not None:
        meta = result.get("_meta") if isinstance(result.get("_meta"), dict) else {}
        challenges = meta.get("mcp/www_authenticate")
        if isinstance(challenges, str):
            challenges = [challenges]
        if isinstance(challenges, list) and challenges and isinstance(challenges[0], str):
            return CallOutcome("refused", exchange.status, challenge_parameters(challenges[0]), "tool-result",
                               challenges[0])
        if result.get("isError") is True and _sounds_like_auth(_text_of(result)):
            return CallOutcome("refused-without-challenge", exchange.status, {}, "tool-result")
        return CallOutcome("ran", exchange.status, {}, "")
    if error is not None:
        if _sounds_like_auth(str(error.get("message", ""))):
            return CallOutcome("refused-without-challenge", exchange.status, {}, "json-rpc")
        return CallOutcome("ran", exchange.status, {}, "")  # e.g. -32602: the arguments were looked at
    return CallOutcome("unclear", exchange.status, {}, "")


def _text_of(result: dict[str, Any]) -> str:
    content = result.get("content")
    if not isinstance(content, list):
        return ""
    return " ".join(str(item.get("text", "")) for item in content if isinstance(item, dict))


def _sounds_like_auth(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in _AUTH_WORDS)
