"""Server-side validation of every tool call's arguments, before the tool runs.

Apps SDK security guide: validate all inputs server-side even though the model produced them.
Each call is checked against a strict JSON Schema derived from the tool's signature (unknown
fields refused, declared formats and enums enforced) and against limits that apply to every
tool; strings are NFC-normalized and characters that hide text are refused or stripped. Arguments
of a plain schema are accepted by a quicker check first (``plain_schema``); jsonschema judges the rest.
"""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator

from ringfence.declaration import Limits
from ringfence.detect import invisible
from ringfence.guards.plain_schema import is_integer, is_number, plain_check

# Default-ignorable code points (zero-width characters, soft hyphen, bidirectional controls,
# variation selectors, Hangul fillers, Unicode tags...: by Unicode property, detect/invisible.py)
# and C0/C1 controls other than tab, newline, return.
HIDDEN_CHARACTERS = invisible.HIDDEN


_draft_type = Draft202012Validator.VALIDATORS["type"]


def _float_would_round(types: Any, instance: Any) -> bool:
    """Whether ``instance`` is an integer that a parameter of ``types`` gets as a float, with digits lost."""
    if not is_integer(instance) or is_number(instance):
        return False
    kinds = [types] if isinstance(types, str) else types or []
    return "number" in kinds and "integer" not in kinds


def _exact_type(validator: Validator, types: Any, instance: Any,
                schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    """The ``type`` keyword, and a number parameter's integer only where a float holds it exactly.

    The tool's pydantic model turns 2**53 + 1 into the float 2**53, so the value checked would not be the
    value the tool gets. (Not a change to what "number" means: bounds keywords apply to numbers only, and
    would then skip such an integer.)"""
    yield from _draft_type(validator, types, instance, schema)
    if _float_would_round(types, instance):
        yield ValidationError("an integer a float does not hold exactly")


# JSON Schema counts 1.0 as an integer; the tool's pydantic model would turn it into 1, or refuse
# a large one. An integer parameter takes JSON integers only, and a number parameter integers a float
# holds exactly (``_exact_type``), so both validators agree.
_StrictNumbers = validators.extend(
    Draft202012Validator, validators={"type": _exact_type},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", lambda _checker, value: is_integer(value)))


def json_schema_validator(schema: Mapping[str, Any]) -> Validator:
    """jsonschema's validator of ``schema``, integers strict, numbers exact, formats checked."""
    return _StrictNumbers(schema, format_checker=FormatChecker())


class InputRefused(Exception):
    """An argument broke a rule; the message names the field and the rule, never more."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"Invalid argument {field}: {rule}")
        self.field = field
        self.rule = rule


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema with ``additionalProperties: false`` on every object that does not say otherwise."""
    result = copy.deepcopy(dict(schema))
    pending: list[Any] = [result]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if (node.get("type") == "object" or "properties" in node) and "additionalProperties" not in node:
                node["additionalProperties"] = False
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return result


class ArgumentValidator:
    """Validates and normalizes one tool's arguments."""

    def __init__(self, input_schema: Mapping[str, Any], limits: Limits) -> None:
        self.limits = limits
        strict = strict_schema(input_schema)
        self._schema = json_schema_validator(strict)
        self._plain = plain_check(strict)  # a quick yes for plain schemas; jsonschema judges the rest
        # The MCP SDK reads a string given to a parameter that is not plain text (``str | list[str]``,
        # ``str | None``) as JSON when it parses to an array, object or null: a value this screen never saw.
        properties = input_schema.get("properties", {})
        self._json_read = frozenset(name for name, schema in properties.items() if schema.get("type") != "string")

    def check(self, arguments: object) -> dict[str, Any]:
        """The normalized arguments, or :class:`InputRefused`."""
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise InputRefused("arguments", "must be an object")
        size = len(json.dumps(arguments, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        if size > self.limits.max_argument_bytes:
            raise InputRefused("arguments", f"larger than {self.limits.max_argument_bytes} bytes")
        normalized = self._normalize(arguments, "", 0)
        if self._plain is None or not self._plain(normalized):
            error = best_match(self._schema.iter_errors(normalized))
            if error is not None:
                raise InputRefused(_field(error), _rule(error))
        for name in self._json_read.intersection(normalized):
            if _sdk_would_unpack(normalized[name]):
                raise InputRefused(name, "holds JSON text; send the value itself, not a string of it")
        return normalized

    def _normalize(self, value: Any, path: str, depth: int) -> Any:
        if depth > self.limits.max_depth:
            raise InputRefused(path or "arguments", f"nested deeper than {self.limits.max_depth} levels")
        if isinstance(value, str):
            return self._normalize_string(value, path)
        if isinstance(value, list):
            if len(value) > self.limits.max_array_items:
                raise InputRefused(path, f"more than {self.limits.max_array_items} items")
            return [self._normalize(item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value)]
        if isinstance(value, dict):
            return {
                self._normalize_string(key, path + "." + key if path else key):
                self._normalize(item, f"{path}.{key}" if path else key, depth + 1)
                for key, item in value.items()
            }
        return value

    def _normalize_string(self, value: str, path: str) -> str:
        if len(value) > self.limits.max_string_length:
            raise InputRefused(path, f"longer than {self.limits.max_string_length} characters")
        if invisible.hides_text(value):  # an emoji's variation selector or joiner hides nothing
            if self.limits.hidden_characters == "refuse":
                raise InputRefused(path, "contains invisible or control characters that can hide text")
            value = invisible.without_hiding_characters(value)
        try:
            value.encode("utf-8")  # a lone surrogate ("\\ud800" in the JSON) is not text (RFC 8259 §8.2)
            return unicodedata.normalize("NFC", value)
        except UnicodeError:
            raise InputRefused(path, "is not valid Unicode text") from None


def _sdk_would_unpack(value: Any) -> bool:
    """Whether ``value`` is a string the SDK's pre-parse replaces: JSON text of an array, object or null."""
    if not isinstance(value, str) or value.lstrip()[:1] not in ("[", "{", "n"):
        return False
    try:
        return isinstance(json.loads(value), list | dict | None)
    except (ValueError, RecursionError):
        return False


def _field(error: ValidationError) -> str:
    if error.validator == "additionalProperties":
        extra = re.findall(r"'([^']{1,64})'", error.message)
        return ".".join([*map(str, error.absolute_path), *extra[:1]]) or "arguments"
    if error.validator == "required":
        missing = re.findall(r"'([^']{1,64})'", error.message)
        return ".".join([*map(str, error.absolute_path), *missing[:1]]) or "arguments"
    return ".".join(str(part) for part in error.absolute_path) or "arguments"


def _type_rule(types: Any, instance: Any) -> str:
    if _float_would_round(types, instance):
        return "must be a number a float holds exactly (this integer would lose digits)"
    return f"must be of type {types}"


def _rule(error: ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    rules = {
        "additionalProperties": "is not a parameter of this tool",
        "required": "is required",
        "type": _type_rule(schema.get("type"), error.instance),
        "enum": f"must be one of {schema.get('enum')}",
        "const": f"must be {schema.get('const')!r}",
        "format": f"must be a valid {schema.get('format')}",
        "maxLength": f"must be at most {schema.get('maxLength')} characters",
        "minLength": f"must be at least {schema.get('minLength')} characters",
        "pattern": "does not match the expected pattern",
        "maximum": f"must be at most {schema.get('maximum')}",
        "minimum": f"must be at least {schema.get('minimum')}",
        "maxItems": f"must have at most {schema.get('maxItems')} items",
        "minItems": f"must have at least {schema.get('minItems')} items",
    }
    return rules.get(str(error.validator), f"breaks the rule {error.validator}")
