"""The output guard searches a result's values for what can change it only (secrets and undeclared personal
data) before it searches them for everything: the result, its flags and the counters are exactly those of
searching every value for every type (``relevant_scanner`` replaced by the whole scanner)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.types import CallToolResult, TextContent

from ringfence.detect import Redactor
from ringfence.guards import output
from ringfence.guards.output import COVERED_BY, PII_TYPES, SECRET_TYPES, STATS, guard_result, relevant_scanner
from tests.guards.test_output_guards import (
    CONTACT,
    CONVERT,
    TEXT,
    VALUE,
    WORDS,
    contact,
    noop,
    returns_list,
    returns_object,
    spec_of,
)

RETURNS = [[], ["public"], ["contact"], ["personal"], ["financial"], ["personal", "contact"], ["location"],
           ["health"], ["personal", "financial", "location", "health", "contact"]]  # fmt: skip
OVERLAPS = ["4111111111111111@example.com", "a4111111111111111@example.com", "4111 1111 1111 1111 ada@example.com",
            "DE89370400440532013000@example.com", "+4930123456789@example.com", "192.168.1.10:4111111111111111",
            "dob 1990-01-02 4111111111111111", "SSN: 123456789 4111111111111111", "078-05-1120@example.com",
            "postgres://ada@example.com:hunter22@db/x", "4111111111111111 +44 20 7946 0018"]  # fmt: skip
STRING = TEXT | st.sampled_from(OVERLAPS) | st.lists(st.sampled_from(WORDS + OVERLAPS), max_size=3).map(" ".join)


def guarded(result: CallToolResult, returns: list[str], action: str, *, whole: bool) -> tuple[dict, dict]:
    """The guarded result and what the guard counted; ``whole``: every value searched for every type."""
    spec = spec_of(noop, returns=returns)
    STATS.reset()
    with pytest.MonkeyPatch.context() as patch:
        if whole:
            patch.setattr(output, "relevant_scanner", lambda declared: output._SCANNER)
        guarded = guard_result(spec, result, undeclared_action=action)  # type: ignore[arg-type]
    counted = STATS.snapshot()
    STATS.reset()
    return guarded.model_dump(by_alias=True), counted


def assert_same_both_ways(result: CallToolResult, returns: list[str], action: str) -> None:
    assert guarded(result, returns, action, whole=False) == guarded(result, returns, action, whole=True)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=st.lists(CONTACT, max_size=5) | st.lists(VALUE, max_size=4) | st.dictionaries(st.text(max_size=8), VALUE,
                                                                                        max_size=4),
    returns=st.sampled_from(RETURNS),
    action=st.sampled_from(["flag", "withhold"]),
)
def test_structured_results_are_guarded_as_a_search_for_every_type_guards_them(
    value: list[Any] | dict[str, Any], returns: list[str], action: str
) -> None:
    assert_same_both_ways(CONVERT[returns_list if isinstance(value, list) else returns_object](value), returns, action)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(STRING, min_size=1, max_size=3), meta=st.none() | st.dictionaries(st.text(max_size=6), STRING,
                                                                                         max_size=3),
       returns=st.sampled_from(RETURNS), action=st.sampled_from(["flag", "withhold"]))  # fmt: skip
def test_text_results_and_meta_are_guarded_as_a_search_for_every_type_guards_them(
    texts: list[str], meta: dict[str, str] | None, returns: list[str], action: str
) -> None:
    result = CallToolResult(content=[TextContent(type="text", text=text) for text in texts], _meta=meta)
    assert_same_both_ways(result, returns, action)


@pytest.mark.parametrize("text", OVERLAPS)
@pytest.mark.parametrize("returns", RETURNS)
def test_a_declared_finding_that_overlaps_an_undeclared_one_decides_as_before(text: str, returns: list[str]) -> None:
    """``4111111111111111@example.com`` is an e-mail address (it wins the overlap), not a card number to withhold."""
    for action in ("flag", "withhold"):
        assert_same_both_ways(CallToolResult(content=[TextContent(type="text", text=text)]), returns, action)
        assert_same_both_ways(CONVERT[returns_object]({"note": text, "id": 1}), returns, action)


@settings(max_examples=500, deadline=None, database=None)
@given(text=STRING | st.text(max_size=40), declared=st.sets(st.sampled_from(PII_TYPES)))
def test_the_relevant_scanner_makes_exactly_the_other_types_candidates(text: str, declared: set[str]) -> None:
    """What the shortcut rests on: without the declared types' rules, the candidates of every other type
    are the whole scanner's (and so none means the whole scan finds declared types only)."""
    scanner = relevant_scanner(frozenset(declared))
    assert not scanner.types & declared and set(SECRET_TYPES) <= scanner.types
    whole = output._SCANNER
    assert sorted(scanner._candidates(text)) == sorted(c for c in whole._candidates(text) if c[3] not in declared)
    if not scanner.types_found(text):
        assert whole.types_found(text) <= declared


def test_a_declared_e_mail_address_is_not_searched_for_its_own_type() -> None:
    """search_contacts' values: e-mail addresses and phone numbers it declares are found by no rule of the
    relevant scanner; the guard sends the result as it came."""
    spec = spec_of(noop, returns=["personal", "contact"])
    declared = frozenset(type_ for type_ in PII_TYPES if COVERED_BY[type_] & spec.returns)
    scanner = relevant_scanner(declared)
    assert {"EMAIL", "PHONE"} <= declared and not scanner.types_found("ada3@example.com")
    assert not scanner.types_found("+44 20 7946 0018") and Redactor().types_found("+44 20 7946 0018") == {"PHONE"}
    result = CONVERT[returns_list]([contact(index) for index in range(20)])
    assert guard_result(spec, result) is result
