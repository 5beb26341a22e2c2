"""The formatter's shortcuts write exactly the lines the plain code wrote: ``_bound``'s exact-type fast path
against the generic walk it skips, the shared JSON encoder against ``json.dumps``, and a remembering
redactor's ``redact`` against a redactor that remembers nothing; then whole lines, against a formatter
built on those references."""

from __future__ import annotations

import itertools
import json
import logging
import string
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ringfence.detect.redactor import Redactor, RememberingRedactor
from ringfence.logs import formatting
from ringfence.logs.context import bind_request_id, unbind
from ringfence.logs.formatting import MAX_DEPTH, MAX_ITEMS, MAX_NODES, MAX_STRING, RedactingFormatter

KEY = b"k" * 32
WORDS = ["ada@example.com", "4111 1111 1111 1111", "+44 20 7946 0018", "password=hunter2hunter2", "Bearer abcdefgh1234",
         "192.168.1.10", "tool.call", "ok", "search_contacts", "3c61810569e7f4788865cd57937b3612", "\u00e9", "\ud800",
         "x" * (MAX_STRING + 5)]  # fmt: skip
STRING = st.sampled_from(WORDS) | st.text(max_size=12) | st.text(alphabet=string.hexdigits, max_size=40)
SCALAR = (STRING | st.integers() | st.integers(2**62, 2**70) | st.floats() | st.booleans() | st.none()
          | st.binary(max_size=8))  # fmt: skip
NAMES = st.sampled_from(["password", "details", "token", "id", "x" * 120, "é"]) | st.text(max_size=8)
VALUE = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=MAX_ITEMS + 3) | st.tuples(inner, inner)
                     | st.dictionaries(NAMES, inner, max_size=6) | st.sets(st.integers(), max_size=3),
                     max_leaves=80)  # fmt: skip


def reference_bound(value: Any, depth: int, budget: list[int]) -> Any:
    """``_bound`` before its exact-type fast path (the generic checks, in their order)."""
    budget[0] -= 1
    if type(value) is str and len(value) <= MAX_STRING and value.isascii():
        return value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else f"(an integer of {value.bit_length()} bits)"
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, str):
        return formatting._capped(value, MAX_STRING + formatting._MARK_ROOM)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value[: MAX_STRING + 1])
        return formatting._capped(raw.decode("utf-8", "replace"), MAX_STRING, total=len(value))
    if depth >= MAX_DEPTH or budget[0] <= 0:
        return f"({type(value).__name__}, nested too deep)" if depth >= MAX_DEPTH else "(omitted: too many values)"
    if isinstance(value, Mapping):
        items = {formatting._key(key): reference_bound(item, depth + 1, budget)
                 for key, item in itertools.islice(value.items(), MAX_ITEMS)}
        if len(value) > MAX_ITEMS:
            items["(truncated)"] = f"{len(value) - MAX_ITEMS} more entries"
        return items
    if isinstance(value, list | tuple | set | frozenset):
        out = [reference_bound(item, depth + 1, budget) for item in itertools.islice(value, MAX_ITEMS)]
        if len(value) > MAX_ITEMS:
            out.append(f"({len(value) - MAX_ITEMS} more items)")
        return out
    return formatting._capped(formatting._safe_str(value), MAX_STRING)


def reference_json(event: dict[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=True, separators=(",", ":"), allow_nan=False, default=str)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=VALUE, budget=st.sampled_from([MAX_NODES, 40, 3, 1]), depth=st.integers(0, MAX_DEPTH))
def test_bound_is_the_generic_walk(value: Any, budget: int, depth: int) -> None:
    fast, generic = [budget], [budget]
    assert formatting._bound(value, depth, fast) == reference_bound(value, depth, generic)
    assert fast == generic  # the same nodes counted: the next value of the line is cut at the same place


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.dictionaries(NAMES, VALUE, max_size=6))
def test_the_shared_encoder_writes_what_json_dumps_writes(value: dict[str, Any]) -> None:
    bounded = formatting.bounded(value)
    assert formatting._JSON_LINE.encode(bounded) == reference_json(bounded)
    with pytest.raises(ValueError):  # allow_nan=False as before: bounded never leaves one, the encoder refuses it
        formatting._JSON_LINE.encode({"x": float("nan")})


@settings(max_examples=300, deadline=None, database=None)
@given(texts=st.lists(STRING, max_size=8))
def test_a_remembering_redactor_redacts_as_one_that_remembers_nothing(texts: list[str]) -> None:
    remembering = RememberingRedactor(replacement="hash", hash_key=KEY)
    plain = Redactor(replacement="hash", hash_key=KEY)
    for text in texts + texts:  # the second time from memory
        assert remembering.redact(text) == plain.redact(text)


class ReferenceFormatter(RedactingFormatter):
    """The formatter with the reference pieces: no remembering, the generic walk, json.dumps."""

    def format(self, record: logging.LogRecord) -> str:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(formatting, "_bound", reference_bound)
            patch.setattr(formatting, "render_json", reference_json)
            event = formatting.record_fields(record)
            for processor in self.processors:
                event = processor(event)
            return reference_json(event)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(extras=st.dictionaries(NAMES.filter(lambda name: name not in vars(logging.makeLogRecord({}))), VALUE,
                              max_size=5),
       message=st.sampled_from(["tool.call %s %s", "%s - \"%s %s HTTP/%s\" %d"]),
       request_id=st.none() | st.sampled_from(["3c61810569e7f4788865cd57937b3612", "ada@example.com"]))  # fmt: skip
def test_lines_are_those_of_the_reference_formatter(extras: dict[str, Any], message: str,
                                                    request_id: str | None) -> None:
    new = RedactingFormatter(RememberingRedactor(replacement="hash", hash_key=KEY), "json")
    reference = ReferenceFormatter(Redactor(replacement="hash", hash_key=KEY), "json")
    name = "uvicorn.access" if "HTTP" in message else "ringfence.security"
    args = ("127.0.0.1:5000", "POST", "/mcp?token=x", "1.1", 200) if "HTTP" in message else ("ok", "search_contacts")
    token = bind_request_id(request_id) if request_id else None
    try:
        for _ in range(2):  # the second line from the remembering redactor's memory
            record = logging.getLogger(name).makeRecord(name, logging.INFO, __file__, 1, message, args, None,
                                                        extra=extras)
            assert new.format(record) == reference.format(record)
    finally:
        if token is not None:
            unbind(token)
