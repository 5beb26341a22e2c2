"""The gate's argument screen and the MCP SDK's own validation agree on every tool's schema.

The gate validates each ``tools/call``'s arguments strictly (guards/screening.py) and hands the
SDK the normalized arguments; the SDK then validates them once more against the tool's pydantic
model, which it cannot be told not to. Two validators are safe only if they cannot disagree about
what runs: whatever the screen lets through, the SDK must accept, unchanged. These properties
check it on generated arguments for tools of every parameter shape an author may declare.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from ringfence import App
from ringfence.guards.screening import ArgumentScreen
from ringfence.guards.validation import InputRefused
from ringfence.runtime import mcp_server_for

app = App("shapes")


class Address(BaseModel):
    street: str = Field(max_length=50)
    number: int | None = None


@app.tool(effect="read")
async def scalars(count: int, ratio: float, flag: bool, label: str = Field(max_length=20)) -> str:
    """Scalars of each JSON type."""
    return "ok"


@app.tool(effect="read")
async def optionals(note: str | None = None, limit: int | None = Field(default=None, ge=0, le=100),
                    mode: Literal["fast", "slow"] = "fast") -> str:
    """Optional values, bounds and an enumeration."""
    return "ok"


@app.tool(effect="read")
async def collections(tags: list[str], pairs: dict[str, int] | None = None, either: str | list[str] = "") -> str:
    """Lists, maps and a union of a string and a list."""
    return "ok"


@app.tool(effect="read")
async def nested(address: Address, previous: list[Address] | None = None) -> str:
    """A nested model."""
    return "ok"


server = mcp_server_for(app)
screen = ArgumentScreen(app.tools)
asyncio.run(screen.load(server))
SDK_TOOLS = {tool.name: tool for tool in server._tool_manager.list_tools()}  # the SDK's own validators


def json_values(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(["street", "number", "a", "x"]), inner, max_size=3),
                        max_leaves=6)


# Integers near and beyond what a float holds exactly (2**53), which the SDK turns into floats for a number.
EDGE_INTEGERS = st.sampled_from([2**53, 2**53 + 1, -(2**53) - 1, 2**60, 2**60 + 1, 10**400])
SCALARS = (st.none() | st.booleans() | st.integers(-10**20, 10**20) | EDGE_INTEGERS
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
# Strings the SDK would read as JSON text (its pre-parse turns '["a"]' into a list for non-str parameters).
JSON_TEXT = json_values(SCALARS).map(json.dumps)
VALUES = json_values(SCALARS | JSON_TEXT)


# Valid arguments for each tool; the property replaces or adds a few of them with generated values,
# so that most examples get past the other parameters to the one being varied.
VALID: dict[str, dict[str, Any]] = {
    "scalars": {"count": 1, "ratio": 0.5, "flag": True, "label": "x"},
    "optionals": {},
    "collections": {"tags": ["a"]},
    "nested": {"address": {"street": "Main"}},
}


def arguments_for(tool: str) -> st.SearchStrategy[dict[str, Any]]:
    names = list(SDK_TOOLS[tool].parameters["properties"])
    changes = st.dictionaries(st.sampled_from([*names, "extra"]), VALUES, max_size=2)
    return changes.map(lambda changed: {**VALID[tool], **changed})


def sdk_accepts(tool: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
    """What the tool would be called with after the SDK's validation, as JSON; ``None`` if it refuses."""
    try:
        validated = SDK_TOOLS[tool].fn_metadata.validate_arguments(arguments)
    except ValidationError:
        return None
    return json.loads(json.dumps(validated, default=lambda model: model.model_dump(exclude_unset=True)))


def assert_agreement(tool: str, arguments: dict[str, Any]) -> None:
    screened = screen.screen(tool, arguments)
    if screened.refusal is not None:
        assert isinstance(screened.refusal, InputRefused)
        return
    normalized = screened.arguments
    assert normalized is not None
    accepted = sdk_accepts(tool, normalized)
    assert accepted is not None, f"the screen let {normalized!r} through, the SDK refused it"
    for name, value in normalized.items():  # what was screened is what the tool gets
        assert accepted[name] == value, f"{name}: screened {value!r}, the SDK made it {accepted[name]!r}"


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tool=st.sampled_from(sorted(SDK_TOOLS)), data=st.data())
def test_whatever_the_screen_accepts_the_sdk_accepts_unchanged(tool: str, data: st.DataObject) -> None:
    """Validate all inputs server-side (Apps SDK): the screen is the stricter of the two validators."""
    assert_agreement(tool, data.draw(arguments_for(tool)))


def test_a_number_parameter_takes_only_integers_a_float_holds_exactly() -> None:
    """The SDK hands a float parameter 2**53 + 1 as the float 2**53: checked and used would differ, so the
    screen refuses it, clearly; 2**53 and 2**60 are floats exactly and pass unchanged."""
    for exact in (2**53, -(2**53), 2**60, 0):
        assert_agreement("scalars", {**VALID["scalars"], "ratio": exact})
        assert screen.screen("scalars", {**VALID["scalars"], "ratio": exact}).refusal is None
    for inexact in (2**53 + 1, -(2**53) - 1, 2**60 + 1, 10**400):
        refusal = screen.screen("scalars", {**VALID["scalars"], "ratio": inexact}).refusal
        assert isinstance(refusal, InputRefused) and refusal.field == "ratio"
        assert "float holds exactly" in refusal.rule
    wrong_type = screen.screen("scalars", {**VALID["scalars"], "label": 2**53 + 1}).refusal
    assert isinstance(wrong_type, InputRefused) and wrong_type.rule == "must be of type string"
    huge = screen.screen("scalars", {**VALID["scalars"], "count": 2**70})  # an integer parameter: any size
    assert huge.refusal is None and huge.arguments is not None and huge.arguments["count"] == 2**70


def test_json_text_for_a_parameter_that_is_not_plain_text_is_refused_by_the_screen() -> None:
    """The SDK would parse '["a"]' into a list for ``str | list[str]``, a value the screen never saw."""
    arguments = {"tags": [], "either": '["\\u202ehidden"]'}
    assert sdk_accepts("collections", arguments) == {"tags": [], "either": ["\u202ehidden"], "pairs": None}
    screened = screen.screen("collections", arguments)
    assert screened.refusal is not None and screened.refusal.field == "either"
    assert screened.refusal.rule == "holds JSON text; send the value itself, not a string of it"


def test_plain_text_that_looks_like_json_is_kept_for_a_str_parameter() -> None:
    """A ``str`` parameter is never pre-parsed by the SDK: its text, JSON-like or not, is just text."""
    screened = screen.screen("scalars", {"count": 1, "ratio": 0.5, "flag": True, "label": '["a"]'})
    assert screened.refusal is None
    assert_agreement("scalars", {"count": 1, "ratio": 0.5, "flag": True, "label": '["a"]'})
