"""A quick yes for the arguments of a tool whose input schema is plain, before jsonschema's walk.

jsonschema checks a schema through its general machinery: about 26 µs for ``add_contact``'s three
optional strings, most of what validating a call costs. Most tools' parameters are plain: strings,
integers, numbers, booleans and null, with lengths, bounds and string enums, or a choice (``anyOf``)
among those, in an object that takes no other fields. For such a schema, :func:`plain_check` builds a
check once that says in a few µs whether arguments are valid. It is only ever used to say yes:
arguments it does not accept, and every schema it does not read (nested objects, arrays, formats,
patterns, references...), go to jsonschema, which judges them and words each refusal. A property test
(``tests/guards/test_plain_schema.py``) holds its verdict to jsonschema's on generated schemas and values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

ANNOTATIONS = frozenset({"title", "description", "default", "examples"})  # meta-data (2020-12 §9): no effect


def is_integer(value: Any) -> bool:
    """A JSON integer, never 1.0 or a bool (the tool's pydantic model would turn 1.0 into 1, or refuse it)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A JSON number that the tool's ``float`` gets unchanged: a float, or an integer a float holds exactly.
    pydantic turns 2**53 + 1 into 2**53 and refuses what overflows a float: the value checked would not be
    the value the tool gets."""
    if isinstance(value, float):
        return True
    if not is_integer(value):
        return False
    try:
        return float(value) == value  # int and float compare exactly
    except OverflowError:
        return False


# JSON Schema's types as ringfence's validator judges the `type` keyword (validation.py: `_exact_type`).
TYPES: dict[str, Check] = {
    "string": lambda value: isinstance(value, str),
    "integer": is_integer,
    "number": is_number,
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
}
# Bounds of numbers: the keyword, and when a value breaks it (JSON Schema 2020-12 §6.2).
BOUNDS: dict[str, Callable[[Any, Any], bool]] = {
    "minimum": lambda value, bound: value < bound,
    "maximum": lambda value, bound: value > bound,
    "exclusiveMinimum": lambda value, bound: value <= bound,
    "exclusiveMaximum": lambda value, bound: value >= bound,
}


def plain_check(schema: Mapping[str, Any]) -> Check | None:
    """A check of an arguments object against ``schema``, or ``None`` when the schema is not plain."""
    keywords = schema.keys() - ANNOTATIONS
    if schema.get("type") != "object" or schema.get("additionalProperties") is not False:
        return None
    if not keywords <= {"type", "properties", "required", "additionalProperties"}:
        return None
    properties, required = schema.get("properties", {}), schema.get("required", [])
    if not isinstance(properties, dict) or not isinstance(required, list):
        return None
    checks = {name: value_check(each) for name, each in properties.items()}
    if any(check is None for check in checks.values()) or not all(isinstance(name, str) for name in required):
        return None

    def accepts(arguments: Any) -> bool:
        if not isinstance(arguments, dict) or not all(name in arguments for name in required):
            return False
        for name, value in arguments.items():
            check = checks.get(name)
            if check is None or not check(value):  # no other field (additionalProperties: false)
                return False
        return True

    return accepts


def value_check(schema: Any) -> Check | None:
    """A check of one value against a plain ``schema``, or ``None`` when it is not plain."""
    if not isinstance(schema, dict):
        return None
    keywords = schema.keys() - ANNOTATIONS
    if "anyOf" in keywords:
        branches = schema["anyOf"]
        if keywords != {"anyOf"} or not isinstance(branches, list) or not branches:
            return None
        checks = [value_check(branch) for branch in branches]
        if any(check is None for check in checks):
            return None
        return lambda value: any(check(value) for check in checks)  # type: ignore[misc]
    kind = schema.get("type")
    if not isinstance(kind, str) or kind not in TYPES:
        return None
    checks = [TYPES[kind]]
    for keyword in keywords - {"type"}:
        check = _keyword_check(kind, keyword, schema[keyword])
        if check is None:
            return None
        checks.append(check)
    return lambda value: all(check(value) for check in checks)


def _keyword_check(kind: str, keyword: str, argument: Any) -> Check | None:
    """The check of one keyword (with its ``argument``) on a value already known to be of type ``kind``."""
    if kind == "string" and keyword in ("minLength", "maxLength") and type(argument) is int:
        if keyword == "minLength":
            return lambda value: len(value) >= argument
        return lambda value: len(value) <= argument
    if kind == "string" and keyword == "enum" and isinstance(argument, list) \
            and all(type(each) is str for each in argument):
        allowed = frozenset(argument)
        return lambda value: value in allowed
    # An int bound of any size compares exactly; a float bound must be finite.
    if kind in ("integer", "number") and keyword in BOUNDS and (
            type(argument) is int or (type(argument) is float and math.isfinite(argument))):
        broken = BOUNDS[keyword]
        return lambda value: not broken(value, argument)
    return None
