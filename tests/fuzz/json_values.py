"""JSON a careless or hostile client sends: odd values, odd numbers, odd text, and odd bytes.

``values()`` are Python values that ``json.dumps`` writes (lone surrogates as ``\\ud800``, NaN and
Infinity as the bare words RFC 8259 forbids); ``bodies()`` are raw bytes around them: deep nesting,
numbers no float holds, duplicate names, BOMs, other encodings, cut-off documents, plain noise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import strategies as st

from tests.fuzz.wire import CANARY

T = TypeVar("T")


def weighted(*choices: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """One of the strategies, each drawn in proportion to its weight. (``st.one_of`` keeps one copy
    of a strategy it is given twice, cached ones like ``st.integers(0, 9)`` included, so repeating
    a strategy there weights nothing.)"""
    return st.sampled_from([strategy for weight, strategy in choices for _ in range(weight)]).flatmap(
        lambda strategy: strategy)

ODD_TEXT = [
    "", " ", "\x00", "\t\n\r", "\\", '"', "'", "<script>alert(1)</script>", "../../etc/passwd", "%00", "%ff",
    "\ud800", "\udfff", "a\ud800b", "\ufeff", "\u202eevil\u202c", "\u200b", "\u2028", "caf\u00e9", "\U0001f600",
    "{{7*7}}", "${jndi:x}", "' OR 1=1 --", "null", "[]", "{}", "x" * 300, "é" * 40, "\u0301" * 50,
]
ODD_NUMBERS: list[Any] = [0, -1, 1, 2**31, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**30, 0.5, -0.0, 1e308,
                          float("nan"), float("inf"), float("-inf")]
DEPTHS = [16, 17, 31, 32, 33, 64, 999, 1000, 1001, 5000, 100_000]  # around the limits and past the parser's


TEXT = st.one_of(  # any Unicode text, the odd strings above, and control characters
    st.text(max_size=40),
    st.sampled_from(ODD_TEXT),
    st.text(st.characters(codec="ascii"), max_size=20),
    st.text(st.characters(categories=("Cc", "Cf", "Zl", "Zp", "Mn")), max_size=10),
)
# A made-up secret: the wire fails the test if an answer ever echoes it.
SECRET_TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20).map(
    lambda tail: f"{CANARY}{tail}")
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.sampled_from(ODD_NUMBERS), TEXT)
_SHALLOW = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(TEXT, SCALARS, max_size=3))
# Two levels of arrays and objects (st.recursive costs several times as much to draw); deeper nesting
# comes from the raw bodies below.
VALUES = weighted((2, SCALARS), (1, st.lists(_SHALLOW, max_size=3)), (1, st.dictionaries(TEXT, _SHALLOW, max_size=3)))


def dumps(value: Any) -> bytes:
    """As a lenient client writes it: NaN and Infinity as bare words, lone surrogates escaped."""
    return json.dumps(value).encode()


def nested(depth: int, kind: str) -> bytes:
    opening, closing = {"list": (b"[", b"]"), "object": (b'{"a":', b"}")}[kind]
    return opening * depth + b"1" + closing * depth


Rewrite = Callable[[bytes], bytes]
_RAW: list[bytes] = [
    b"", b" ", b"null", b"[]", b"{}", b'""', b"NaN", b"-Infinity", b"1e999", b"-0", b"9" * 5000,
    b"1" + b"0" * 400 + b".5", b'{"a":1,"a":2}', b'{"\\ud800":1}', b'"\\udc00"', b"[" * 10 + b"]", b"\x00",
    b"\xff\xfe", b"{'single': 'quotes'}",
]
# How a written document is sent: as it is (mostly), or damaged, re-encoded, or replaced by noise.
REWRITES: st.SearchStrategy[Rewrite] = st.one_of(
    st.just(lambda body: body),
    st.just(lambda body: b"\xef\xbb\xbf" + body),  # a UTF-8 BOM, which RFC 8259 §8.1 forbids adding
    st.just(lambda body: body.decode().encode("utf-16")),
    st.integers(0, 200).map(lambda size: lambda body: body[:size]),  # cut off
    st.tuples(st.one_of(st.integers(1, 2000), st.sampled_from(DEPTHS)), st.sampled_from(["list", "object"]))
    .map(lambda pair: lambda _body: nested(*pair)),
    st.sampled_from(_RAW).map(lambda raw: lambda _body: raw),
    st.binary(max_size=200).map(lambda noise: lambda _body: noise),
)


MOSTLY_INTACT = weighted((3, st.just(lambda body: body)), (1, REWRITES))


def bodies(document: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Raw bodies built around ``document``: as JSON three times in four, else rewritten (build it once
    and keep it: Hypothesis validates each new strategy, which costs more than a request)."""
    return st.tuples(document, MOSTLY_INTACT).map(lambda pair: pair[1](dumps(pair[0])))
