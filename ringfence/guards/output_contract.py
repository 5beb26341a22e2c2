"""The output contract: what a tool's output schema says its guarded result must still be.

The schema is the SDK's, derived from the tool's return type. Its property names are the tool's
declared data (identifier keys it names are kept), and a ``structuredContent`` the guards changed
must still match it (formats checked), else the result is withheld with an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import FormatChecker
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for


@dataclass(frozen=True)
class OutputContract:
    """What a tool's output schema (the SDK's, from its return type) says the guards must keep:
    the property names it declares anywhere, and a validator (formats checked) for the guarded
    ``structuredContent``. A tool without an output schema has an empty contract."""

    declared: frozenset[str] = frozenset()
    validator: Validator | None = None

    @classmethod
    def of(cls, schema: Mapping[str, Any] | None) -> OutputContract:
        if not schema:
            return cls()
        names: set[str] = set()
        pending: list[Any] = [schema]
        while pending:
            node = pending.pop()
            if isinstance(node, dict):
                properties = node.get("properties")
                if isinstance(properties, dict):
                    names.update(key for key in properties if isinstance(key, str))
                pending.extend(node.values())
            elif isinstance(node, list):
                pending.extend(node)
        try:
            kind = validator_for(schema)
            kind.check_schema(schema)
            validator: Validator | None = kind(schema, format_checker=FormatChecker())
        except SchemaError:
            validator = None  # the SDK publishes what it derived; a hand-written schema it cannot check is not ours
        return cls(frozenset(names), validator)

    def broken_by_guards(self, original: Any, guarded: Any) -> bool:
        """Whether ``guarded`` no longer matches the schema while ``original`` did (a schema the
        original broke already, e.g. by a format pydantic does not check, is no verdict on the guards)."""
        if self.validator is None:
            return False
        return not self.validator.is_valid(guarded) and self.validator.is_valid(original)
