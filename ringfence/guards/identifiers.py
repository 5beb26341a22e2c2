"""Identifiers never leave in a tool's result: the keys of ``_meta`` and ``structuredContent`` (and its
JSON copy in text content) that name a session, trace, span, request or correlation id are dropped.

The Apps SDK review rejects such identifiers in results, and ``openai/widgetSessionId`` is the host's to
set. In ``_meta`` any key matching :data:`IDENTIFIER_KEY` goes (and ``ringfence/*`` keys, which only the
guards set); in ``structuredContent`` the narrower :data:`STRUCTURED_IDENTIFIER_KEY`, unless the tool's
output schema declares a property of that name (the tool's own data, a trace viewer's ``trace_id``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pydantic_core
from mcp.types import TextContent

OWN_META_PREFIX = "ringfence/"
# A ``_meta`` key naming a session, trace, span, request or correlation id (any case or separator).
IDENTIFIER_KEY = re.compile(r"session|trace|span_?id|request_?id|correlation", re.IGNORECASE)
# A ``structuredContent`` key naming such an id, or one of the host's identifiers. Narrower than
# IDENTIFIER_KEY: results are the tool's data, where "session" or "sessions" may name the data itself.
STRUCTURED_IDENTIFIER_KEY = re.compile(
    r"(?:x[-_]?(?:amzn[-_]?|b3[-_]?)?)?(?:request|trace|span|correlation|(?:mcp[-_]?|widget[-_]?)?session)[-_]?id"
    r"|trace[-_]?(?:parent|state)|openai/(?:session|subject|widgetSessionId)",
    re.IGNORECASE,
)
# What a text holds when it may be JSON with such a key (lower-cased): the cheap check before parsing it.
_IDENTIFIER_HINTS = ('id"', 'parent"', 'state"', 'openai/')
_JSON_START = re.compile(r"\s*[\[{]")
# ``_meta`` keys ringfence itself sets or the protocol needs; never dropped.
KEEP_META_KEYS = frozenset({"mcp/www_authenticate"})
# Keys of a plain field-name shape; only those are remembered as naming no identifier.
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_MAX_PLAIN_KEYS = 4096


def drop_identifiers(meta: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``meta`` without identifier keys at any depth (nor ``ringfence/*`` keys, which only the guards
    set), and the dropped keys as ``a/b`` paths."""
    dropped: list[str] = []

    def walk(value: Any, path: str, top: bool) -> Any:
        if isinstance(value, Mapping):
            kept = {}
            for key, item in value.items():
                name = f"{path}{key}"
                ours = top and isinstance(key, str) and key.startswith(OWN_META_PREFIX)  # a tool cannot forge flags
                identifier = isinstance(key, str) and IDENTIFIER_KEY.search(key) is not None
                if ours or (identifier and not (top and key in KEEP_META_KEYS)):
                    dropped.append(name)
                    continue
                kept[key] = walk(item, f"{name}/", False)
            return kept
        if isinstance(value, list):
            return [walk(item, f"{path}{index}/", False) for index, item in enumerate(value)]
        return value

    return walk(meta, "", True), dropped


def drop_structured_identifiers(value: Any, declared: frozenset[str] = frozenset(),
                                prefix: str = "structuredContent/") -> tuple[Any, list[str]]:
    """``value`` without keys naming an identifier (``STRUCTURED_IDENTIFIER_KEY``) at any depth, but for
    the names in ``declared``, and the dropped keys as ``prefix`` + ``a/b`` paths; ``value`` itself
    when there is none (the usual case: nothing is copied)."""
    if not has_identifier_key(value, declared):
        return value, []
    dropped: list[str] = []

    def walk(item: Any, path: str) -> Any:
        if isinstance(item, Mapping):
            kept = {}
            for key, inner in item.items():
                if is_identifier_key(key, declared):
                    dropped.append(f"{path}{key}")
                    continue
                kept[key] = walk(inner, f"{path}{key}/")
            return kept
        if isinstance(item, list):
            return [walk(inner, f"{path}{index}/") for index, inner in enumerate(item)]
        return item

    return walk(value, prefix), dropped


# Keys found to name no identifier, remembered (a tool's results carry the same keys);
# never one the pattern matches, even when a tool's schema declares it.
_PLAIN_KEYS: set[str] = set()


def is_identifier_key(key: object, declared: frozenset[str]) -> bool:
    return (isinstance(key, str) and key not in _PLAIN_KEYS and key not in declared
            and STRUCTURED_IDENTIFIER_KEY.fullmatch(key) is not None)


def has_identifier_key(value: Any, declared: frozenset[str]) -> bool:
    """Whether a key of ``value``, at any depth, names an identifier."""
    keys: set[Any] = set()
    containers = [value]
    while containers:  # structuredContent is plain JSON: dicts and lists (type() is the cheap test)
        container = containers.pop()
        if type(container) is dict:
            keys.update(container)
            container = container.values()
        containers += [item for item in container if type(item) is dict or type(item) is list]
    for key in keys - _PLAIN_KEYS:
        if not isinstance(key, str):
            continue
        if STRUCTURED_IDENTIFIER_KEY.fullmatch(key):
            if key not in declared:
                return True
        elif _FIELD_NAME.fullmatch(key):  # plain whatever a tool declares: remembered
            if len(_PLAIN_KEYS) >= _MAX_PLAIN_KEYS:
                _PLAIN_KEYS.clear()
            _PLAIN_KEYS.add(key)
    return False


def without_identifier_texts(content: list[Any], original: Any, cleaned: Any,
                             declared: frozenset[str]) -> tuple[list[Any], list[str]]:
    """``content`` once identifier keys were dropped from ``structuredContent`` (``original`` →
    ``cleaned``): texts that are the SDK's JSON of it are made again from ``cleaned``; other texts that
    are JSON lose such keys too. Also the keys dropped from those other texts."""
    texts = [item.text for item in content if isinstance(item, TextContent)]
    if original is not None and len(texts) == len(content):
        if isinstance(original, dict) and len(original) == 1 and "result" in original \
                and texts == sdk_texts(original["result"]):
            remade = sdk_texts(cleaned["result"])
        elif texts == sdk_texts(original):
            remade = sdk_texts(cleaned)
        else:
            remade = None
        if remade is not None:
            if len(remade) != len(content):
                return [TextContent(type="text", text=text) for text in remade], []
            return [item.model_copy(update={"text": text}) for item, text in zip(content, remade, strict=True)], []
    dropped: list[str] = []
    kept = []
    for index, item in enumerate(content):
        if isinstance(item, TextContent):
            text, removed = json_text_without_identifiers(item.text, declared, f"content/{index}/")
            if removed:
                item = item.model_copy(update={"text": text})
                dropped += removed
        kept.append(item)
    return kept, dropped


def json_text_without_identifiers(text: str, declared: frozenset[str], prefix: str) -> tuple[str, list[str]]:
    """A text that is a JSON object or array, without identifier keys (indented by 2, as the SDK
    writes JSON); any other text as it is."""
    if not _JSON_START.match(text) or not any(hint in text.lower() for hint in _IDENTIFIER_HINTS):
        return text, []
    try:
        value = json.loads(text)
    except ValueError:
        return text, []
    cleaned, dropped = drop_structured_identifiers(value, declared, prefix)
    if not dropped:
        return text, []
    return json.dumps(cleaned, indent=2, ensure_ascii=False), dropped
def sdk_texts(value: Any) -> list[str]:
    """The texts of the content items the SDK's converter makes of a tool's return ``value``
    (``_convert_to_content`` in ``mcp/server/mcpserver/utilities/func_metadata.py``): one per element
    of a list, a string as it is, anything else as JSON indented by 2."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list | tuple):
        return [pydantic_core.to_json(value, fallback=str, indent=2).decode()]
    texts: list[str] = []
    for item in value:
        if type(item) is dict:  # the usual element, first
            texts.append(pydantic_core.to_json(item, fallback=str, indent=2).decode())
        elif isinstance(item, str):
            texts.append(item)
        elif isinstance(item, list | tuple):
            texts.extend(sdk_texts(item))
        elif item is not None:
            texts.append(pydantic_core.to_json(item, fallback=str, indent=2).decode())
    return texts
