"""Arguments for a tool from its input schema: valid minimal values, with free text at one field.

Which fields take free text (a string without ``enum`` or ``const``, nested in objects and arrays
too), and for each, the smallest arguments the schema accepts with a given text there: required
fields only, each at its minimum (``minLength``, ``minimum``, ``minItems``, a sample of its
``format``), the first branch of a union that can hold text. ``ringfence qa injections`` uses it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ringfence.guards.confirmation import CONFIRMATION_PARAMETERS

MAX_SCHEMA_DEPTH = 6
FieldPath = tuple[str | int, ...]  # property names and array indexes, from the arguments object down


def display(path: FieldPath) -> str:
    """``contact.name``, ``tags[0]``: as screening names a field."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class ArgumentBuilder:
    """Valid minimal arguments for one tool's input schema, with free text at one string field."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = {**schema, "properties": {name: value for name, value in schema.get("properties", {}).items()
                                                if name not in CONFIRMATION_PARAMETERS}}
        self.defs = {**schema.get("$defs", {}), **schema.get("definitions", {})}

    def string_fields(self) -> list[FieldPath]:
        """Every field that takes free text (a string without enum or const), nested ones included."""
        return list(self._strings(self.schema, (), 0))

    def arguments(self, path: FieldPath, text: str) -> dict[str, Any]:
        """The minimal arguments, with ``text`` at ``path`` (and whatever leads to it)."""
        return self._with(self.schema, path, text)

    def _strings(self, schema: Mapping[str, Any], path: FieldPath, depth: int) -> Iterator[FieldPath]:
        schema = self._branch(schema)
        if depth > MAX_SCHEMA_DEPTH:
            return
        if _is_free_string(schema):
            yield path
        elif "properties" in schema:
            for name, child in schema["properties"].items():
                yield from self._strings(child, (*path, name), depth + 1)
        elif _types(schema) & {"array"} and isinstance(schema.get("items"), dict):
            yield from self._strings(schema["items"], (*path, 0), depth + 1)

    def _with(self, schema: Mapping[str, Any], path: FieldPath, text: str) -> Any:
        if not path:
            return text
        schema = self._branch(schema)
        part, rest = path[0], path[1:]
        if isinstance(part, int):
            items = self._minimal(schema) or []
            child = self._with(schema.get("items", {}), rest, text)
            return [child, *items[1:]]
        value = self._minimal(schema)
        value[part] = self._with(schema.get("properties", {}).get(part, {}), rest, text)
        return value

    def _minimal(self, schema: Mapping[str, Any], depth: int = 0) -> Any:
        schema = self._branch(schema)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        types = _types(schema)
        if "object" in types or "properties" in schema:
            properties = schema.get("properties", {})
            return {name: self._minimal(properties.get(name, {}), depth + 1) for name in schema.get("required", ())
                    if depth < MAX_SCHEMA_DEPTH}
        if "array" in types:
            return [self._minimal(schema.get("items", {}), depth + 1) for _ in range(schema.get("minItems", 0))]
        if "string" in types:
            return _minimal_string(schema)
        if "integer" in types or "number" in types:
            return _minimal_number(schema, integer="integer" in types)
        if "boolean" in types:
            return False
        if "null" in types:
            return None
        return "qa"

    def _branch(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        """``schema`` with ``$ref`` followed and a union narrowed to the branch used (the first one
        holding free text, else the first that is not null)."""
        for _ in range(MAX_SCHEMA_DEPTH):
            if "$ref" in schema:
                schema = {**self.defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {}),
                          **{k: v for k, v in schema.items() if k != "$ref"}}
                continue
            branches = schema.get("anyOf") or schema.get("oneOf")
            if not branches:
                return schema
            options = [branch for branch in branches if _types(self._deref(branch)) != {"null"}] or branches
            holding = [branch for branch in options if any(True for _ in self._strings(branch, (), MAX_SCHEMA_DEPTH))]
            schema = {**(holding or options)[0], **{k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}}
        return schema

    def _deref(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        if "$ref" in schema:
            return self.defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
        return schema


def _types(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type")
    if isinstance(kind, list):
        return set(kind)
    return {kind} if isinstance(kind, str) else set()


def _is_free_string(schema: Mapping[str, Any]) -> bool:
    return "string" in _types(schema) and "enum" not in schema and "const" not in schema


FORMAT_EXAMPLES = {"email": "qa@example.com", "uri": "https://example.com/", "url": "https://example.com/",
                   "date": "2026-01-01", "date-time": "2026-01-01T00:00:00Z", "time": "12:00:00",
                   "uuid": "00000000-0000-4000-8000-000000000000", "ipv4": "192.0.2.1", "ipv6": "2001:db8::1",
                   "hostname": "example.com"}


def _minimal_string(schema: Mapping[str, Any]) -> str:
    if schema.get("format") in FORMAT_EXAMPLES:
        return FORMAT_EXAMPLES[schema["format"]]
    return "qa" + "a" * max(0, int(schema.get("minLength", 0)) - 2)


def _minimal_number(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    value = 1 if low is None else low + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
    high = schema.get("maximum")
    if high is not None and value > high:
        value = high
    return int(value) if integer else value
