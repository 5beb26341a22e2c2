"""Characters that hide text, by Unicode property rather than by hand-picked list.

Hidden are the default-ignorable code points (Unicode §5.21: zero-width spaces and joiners, soft
hyphen, combining grapheme joiner, Hangul fillers, variation selectors, bidirectional controls
(UAX #9), tag characters...), which render as nothing, and the C0/C1 control characters other than
tab, newline and carriage return. The properties come from ``unicode_tables`` (generated from the
Unicode Character Database of Python's ``unicodedata`` version).

A variation selector or zero-width joiner that is part of an emoji (``❤️``, ``👩‍💻``, keycap ``1️⃣``;
UTS #51) hides nothing: :func:`hiding_characters` leaves those out.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterable, Iterator

from ringfence.detect.unicode_tables import (
    ASCII_COMPATIBLE,
    BIDI_CONTROL,
    DEFAULT_IGNORABLE,
    EMOJI_MODIFIER,
    EXTENDED_PICTOGRAPHIC,
    VARIATION_SELECTOR,
)

TAG_FIRST, TAG_LAST = 0xE0000, 0xE007F  # Unicode tags block: invisible copies of ASCII
ZWJ = "\u200d"
KEYCAP = "\u20e3"  # COMBINING ENCLOSING KEYCAP, after a digit, "#" or "*" and U+FE0F
_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # general category Cc less tab, newline, return


def _class(ranges: Iterable[tuple[int, int]]) -> str:
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


class _Ranges:
    """Membership in a sorted tuple of inclusive code point ranges."""

    def __init__(self, ranges: tuple[tuple[int, int], ...]) -> None:
        self._starts = [start for start, _ in ranges]
        self._ends = [end for _, end in ranges]

    def __contains__(self, char: str) -> bool:
        code = ord(char)
        index = bisect.bisect_right(self._starts, code) - 1
        return index >= 0 and code <= self._ends[index]


IGNORABLE_CLASS = _class(DEFAULT_IGNORABLE)  # the inside of a [...] character class
IGNORABLE = re.compile(f"[{IGNORABLE_CLASS}]")  # every default-ignorable code point
IGNORABLE_RUN = re.compile(f"[{IGNORABLE_CLASS}]+")
HIDDEN = re.compile(f"[{IGNORABLE_CLASS}{_CONTROLS}]")  # ... and the control characters


def _disguised_ascii() -> list[tuple[int, int]]:
    """The characters that are an ASCII letter, digit or one of ``-_.@=+`` drawn another way: their
    compatibility decomposition only changes the look (full-width, a math font, circled, squared, small)
    or they are a canonical singleton (KELVIN SIGN). Superscripts ("m²", "nº"), fractions and ligatures
    are how people write, not a disguise, and full-width commas, colons and brackets are how CJK
    text is punctuated: those would make every such text be scanned twice for nothing."""
    codes = []
    for start, end in ASCII_COMPATIBLE:
        for code in range(start, end + 1):
            form = unicodedata.normalize("NFKC", chr(code))
            tag = unicodedata.decomposition(chr(code)).split(" ")[0]
            looks = tag in _LOOK_ONLY or not tag.startswith("<")
            if looks and (form in _SECRET_PUNCTUATION or any(c.isascii() and c.isalnum() for c in form)):
                codes.append(code)
    ranges: list[tuple[int, int]] = []
    for code in codes:  # merged: a character class of single characters is searched one by one
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return ranges


_LOOK_ONLY = frozenset({"<wide>", "<font>", "<circle>", "<square>", "<small>"})
_SECRET_PUNCTUATION = frozenset("-_.@=+")
_DISGUISING = sorted([*DEFAULT_IGNORABLE, *_disguised_ascii()])
# A regex class with ranges above U+FFFF is tested range by range (ten times slower than the bitmap of
# a class within the BMP), so those characters are found as "any astral one", then looked up.
_DISGUISING_BMP = re.compile(f"[{_class(r for r in _DISGUISING if r[1] <= 0xFFFF)}\U00010000-\U0010ffff]")
_DISGUISING_ASTRAL = _Ranges(tuple(r for r in _DISGUISING if r[0] > 0xFFFF))


def disguising(text: str) -> Iterator[int]:
    """Where ``text`` holds a character that hides text, or an ASCII one in disguise (a full-width
    letter): what ``normalize.compatible`` undoes."""
    for match in _DISGUISING_BMP.finditer(text):
        char = match.group()
        if char <= "\uffff" or char in _DISGUISING_ASTRAL:
            yield match.start()
BIDI = _Ranges(BIDI_CONTROL)
VARIATION = _Ranges(VARIATION_SELECTOR)
_PICTOGRAPHIC = _Ranges(EXTENDED_PICTOGRAPHIC)
_MODIFIER = _Ranges(EMOJI_MODIFIER)


def kind(char: str) -> str | None:
    """``tag``, ``bidi``, ``variation`` or ``zero_width`` (any other default-ignorable) for an
    invisible character, else ``None``."""
    if not IGNORABLE.match(char):
        return None
    if TAG_FIRST <= ord(char) <= TAG_LAST:
        return "tag"
    if char in BIDI:
        return "bidi"
    if char in VARIATION:
        return "variation"
    return "zero_width"


def in_emoji(text: str, index: int) -> bool:
    """Whether ``text[index]`` is the variation selector or joiner of an emoji sequence (UTS #51 §1.4)."""
    char = text[index]
    before = text[index - 1] if index else ""
    after = text[index + 1] if index + 1 < len(text) else ""
    if char in "\ufe0e\ufe0f":  # text or emoji presentation of a pictograph, or a keycap
        if not before:
            return False
        return before in _PICTOGRAPHIC or (before in "0123456789#*" and after == KEYCAP)
    if char == ZWJ:  # joins two emoji: 👩 + ZWJ + 💻, also after a skin tone or U+FE0F
        joined = before != "" and (before in _PICTOGRAPHIC or before in _MODIFIER or before == "\ufe0f")
        return joined and after != "" and after in _PICTOGRAPHIC
    return False


def hiding_characters(text: str) -> Iterator[re.Match[str]]:
    """Each invisible or control character of ``text`` that can hide text (emoji sequences left out)."""
    for match in HIDDEN.finditer(text):
        if not in_emoji(text, match.start()):
            yield match


def hides_text(text: str) -> bool:
    """Whether ``text`` holds a character that can hide text."""
    return HIDDEN.search(text) is not None and next(hiding_characters(text), None) is not None


def without_hiding_characters(text: str) -> str:
    """``text`` with every character that can hide text removed (emoji sequences kept)."""
    if HIDDEN.search(text) is None:
        return text
    kept, pos = [], 0
    for match in hiding_characters(text):
        kept.append(text[pos : match.start()])
        pos = match.end()
    kept.append(text[pos:])
    return "".join(kept)
