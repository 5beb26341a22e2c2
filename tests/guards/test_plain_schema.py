"""The quick check of plain schemas (guards/plain_schema.py) gives jsonschema's verdict.

Argument screening takes the quick check's yes without asking jsonschema, so a value it accepted
that jsonschema refuses would reach the tool unchecked. On generated schemas, plain and near-plain
(other keywords, bools where numbers go, enums of other types, non-finite bounds), and generated
JSON values, the check either declines the schema or agrees with jsonschema both ways.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ringfence.declaration import Limits
from ringfence.guards.plain_schema import plain_check
from ringfence.guards.validation import ArgumentValidator, InputRefused, json_schema_validator, strict_schema

NAMES = ["a", "b", "c"]
TYPES = st.sampled_from(["string", "integer", "number", "boolean", "null", "array", "object"])
# Bounds and values share small numbers, so that values fall on bounds as often as beside them.
BOUNDS = st.one_of(st.integers(-2, 2), st.sampled_from([0.5, -0.5, 1.0]), st.floats(-5, 5),
                   st.sampled_from([True, False, float("inf"), float("nan"), "3", 2**70, 10**400, -(10**400)]))
LENGTHS = st.one_of(st.integers(0, 4), st.sampled_from([True, 1.0, -1, "2"]))
ENUMS = st.lists(st.one_of(st.sampled_from(["x", "y", "", "1"]), st.integers(0, 2), st.booleans()), max_size=3)
KEYWORDS = {
    "minLength": LENGTHS, "maxLength": LENGTHS, "minimum": BOUNDS, "maximum": BOUNDS, "exclusiveMinimum": BOUNDS,
    "exclusiveMaximum": BOUNDS, "enum": ENUMS, "title": st.just("T"), "default": st.none(),
    "format": st.sampled_from(["email", "date-time"]), "pattern": st.just("^x"), "const": st.just("x"),
}


@st.composite
def value_schemas(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    if depth == 0 and draw(st.integers(0, 3)) == 0:
        return {"anyOf": draw(st.lists(value_schemas(depth + 1), min_size=0, max_size=3))}
    # One or two keywords at most, so that plain schemas are common.
    names = draw(st.lists(st.sampled_from(sorted(KEYWORDS)), unique=True, max_size=2))
    kept = {name: draw(KEYWORDS[name]) for name in names}
    return {"type": draw(TYPES), **kept} if draw(st.integers(0, 9)) else kept


@st.composite
def object_schemas(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=3))
    schema: dict[str, Any] = {"type": "object", "properties": {name: draw(value_schemas()) for name in names},
                              "title": "Arguments"}
    required = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=2))
    if required:
        schema["required"] = required
    if draw(st.integers(0, 9)) == 0:
        schema[draw(st.sampled_from(["additionalProperties", "$defs", "minProperties"]))] = draw(
            st.sampled_from([True, {}, 1]))
    return strict_schema(schema)


VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3),
                   st.sampled_from([2**70, -(2**70), 2**53 + 1, 0.5, -0.5, 1.0]),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
                   st.sampled_from(["x", "y", "", "1"]), st.lists(st.integers(), max_size=2),
                   st.dictionaries(st.text(max_size=2), st.integers(), max_size=2))


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A schema, and arguments mostly for its own parameters (a stray one now and then)."""
    schema = draw(object_schemas())
    names = [*schema["properties"], *(["d"] if draw(st.integers(0, 5)) == 0 else [])]
    return schema, {name: draw(VALUES) for name in names if draw(st.integers(0, 3))}


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_the_quick_check_declines_a_schema_or_gives_jsonschemas_verdict(case: tuple[dict[str, Any],
                                                                                   dict[str, Any]]) -> None:
    schema, arguments = case
    check = plain_check(schema)
    if check is not None:
        assert check(arguments) == json_schema_validator(schema).is_valid(arguments)


GRID_VALUES = [-1, 0, 0.5, 1, 1.0, 2, True, False, None, "", "a", "ab", "x", 2**70, 2**53 + 1, 10**400, float("nan"),
               float("inf"), -0.0]


@pytest.mark.parametrize(("kind", "keyword", "bound"), [
    *((kind, keyword, bound) for kind in ("integer", "number")
      for keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
      for bound in (0, 1, 0.5, 10**400)),
    *(("string", keyword, bound) for keyword in ("minLength", "maxLength") for bound in (0, 1, 2)),
    ("string", "enum", ["x", "a"]), ("boolean", "title", "T"), ("null", "default", None),
])
def test_on_each_bound_and_either_side_of_it_the_quick_check_gives_jsonschemas_verdict(
        kind: str, keyword: str, bound: Any) -> None:
    schema = strict_schema({"type": "object", "properties": {"v": {"type": kind, keyword: bound}}})
    check = plain_check(schema)
    assert check is not None
    for value in GRID_VALUES:
        assert check({"v": value}) == json_schema_validator(schema).is_valid({"v": value}), value


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"a": {"type": "string", "format": "email"}}},
    {"type": "object", "properties": {"a": {"type": "string", "pattern": "^x"}}},
    {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string"}}}},
    {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": {"type": "object"}}},
    {"type": "object", "properties": {"a": {"type": ["string", "null"]}}},
    {"type": "object", "properties": {"a": {"type": "integer", "enum": [1, 2]}}},
    {"type": "object", "properties": {"a": {"type": "number", "minimum": True}}},
    {"type": "object", "properties": {"a": {"anyOf": []}}},
    {"type": "object", "properties": {"a": {}}},
], ids=["format", "pattern", "array", "reference", "type-list", "integer-enum", "bool-bound", "empty-anyof", "any"])
def test_what_the_quick_check_does_not_read_is_left_to_jsonschema(schema: dict[str, Any]) -> None:
    assert plain_check(strict_schema(schema)) is None


def test_a_tools_plain_signature_is_read_by_the_quick_check_and_refusals_still_name_the_rule() -> None:
    schema = {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 5},
        "email": {"anyOf": [{"type": "string", "maxLength": 8}, {"type": "null"}], "default": None},
        "limit": {"type": "integer", "minimum": 1, "maximum": 10}}}
    assert plain_check(strict_schema(schema)) is not None
    validator = ArgumentValidator(schema, Limits())
    assert validator.check({"name": "Ada", "email": None, "limit": 3}) == {"name": "Ada", "email": None, "limit": 3}
    for arguments, field, rule in [
        ({"name": "Ada Lovelace"}, "name", "must be at most 5 characters"),
        ({"name": "Ada", "limit": 1.0}, "limit", "must be of type integer"),
        ({"name": "Ada", "limit": 11}, "limit", "must be at most 10"),
        ({"name": "Ada", "extra": 1}, "extra", "is not a parameter of this tool"),
        ({}, "name", "is required"),
    ]:
        with pytest.raises(InputRefused) as refused:
            validator.check(arguments)
        assert (refused.value.field, refused.value.rule) == (field, rule)
