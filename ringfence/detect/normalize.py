"""Text folding for the injection detector, and the hidden characters it strips on the way.

Folding makes trivial obfuscations match the same rules as plain text: NFKC, case folding,
diacritics removed, invisible characters dropped, Cyrillic/Greek look-alikes inside Latin words
mapped to Latin, and digits inside words read as letters (``1gn0r3`` → ``ignore``). Whitespace is
not collapsed: the rules accept any run of it between words. Every folded character remembers
where it came from, so findings point into the original text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from ringfence.detect import invisible
from ringfence.detect.invisible import TAG_FIRST

# Confusable letters (Unicode TR 39 confusables, the common Cyrillic and Greek subset), lower case.
_CONFUSABLES = str.maketrans(
    {
        "\u0430": "a",
        "\u0432": "b",
        "\u0435": "e",
        "\u0451": "e",
        "\u043a": "k",
        "\u043c": "m",
        "\u043d": "h",
        "\u043e": "o",
        "\u0440": "p",
        "\u0441": "c",
        "\u0442": "t",
        "\u0443": "y",
        "\u0445": "x",
        "\u0456": "i",
        "\u0457": "i",
        "\u0458": "j",
        "\u0455": "s",
        "\u04bb": "h",
        "\u0501": "d",
        "\u051b": "q",
        "\u051d": "w",
        "\u0261": "g",
        "\u03b1": "a",
        "\u03b2": "b",
        "\u03b5": "e",
        "\u03b9": "i",
        "\u03ba": "k",
        "\u03bd": "v",
        "\u03bf": "o",
        "\u03c1": "p",
        "\u03c4": "t",
        "\u03c5": "u",
        "\u03c7": "x",
        "\u03f2": "c",
        "\u0131": "i",
    }
)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b"})
# A word that mixes letters with leet digits; pure numbers are left alone.
_LEET_WORD = re.compile(r"(?<![\w@])(?:[a-z]++[0-9]|[0-9]++[a-z])[a-z0-9]{0,38}+(?![\w@])")
# Leetspeak shows as a digit between letters or a letter between digits ("1gn0r3", "pr3v10u5").
_LETTER_DIGIT = re.compile(r"[a-z][0-9][a-z]|[0-9][a-z][0-9]")
_NON_ASCII_WORD = re.compile(r"(?<![^\W\d_])[a-z]*+[^\x00-\x7f\W\d_][^\W\d_]*+")
_SEGMENT = re.compile(r"(?P<ascii>[\x00-\x7f]+)|(?P<other>[^\x00-\x7f]+)")


@dataclass(frozen=True, slots=True)
class HiddenRun:
    """A run of invisible characters: ``kind`` is ``tag``, ``zero_width``, ``bidi`` or ``variation``."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Folded:
    """The folded text and, unless folding kept every position, a map back to the original."""

    text: str
    origin: tuple[int, ...] | None
    original_length: int

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of folded ``[start, end)``."""
        if self.origin is None:
            return start, end
        if start >= len(self.origin):
            return self.original_length, self.original_length
        last = self.origin[end - 1] + 1 if end > start else self.origin[start]
        return self.origin[start], last


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    if invisible.IGNORABLE.match(char):
        return ""
    folded = unicodedata.normalize("NFKC", char).casefold()
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=4096)
def _compatible_char(char: str) -> str:
    return "" if invisible.IGNORABLE.match(char) else unicodedata.normalize("NFKC", char)


def _mapped(text: str, ascii_run: Callable[[str], str], char: Callable[[str], str]) -> Folded:
    """``text`` with each ASCII run replaced by ``ascii_run(run)`` (of the same length) and each other
    character by ``char(c)`` (``""`` drops it), each resulting character mapped to where it came from."""
    pieces: list[str] = []
    origin: list[int] = []
    for segment in _SEGMENT.finditer(text):
        start, end = segment.span()
        if segment.lastgroup == "ascii":
            pieces.append(ascii_run(segment.group()))
            origin.extend(range(start, end))
            continue
        for index in range(start, end):
            piece = char(text[index])
            pieces.append(piece)
            origin.extend([index] * len(piece))
    return Folded("".join(pieces), tuple(origin), len(text))


def fold(text: str) -> Folded:
    """Fold ``text`` for matching (see the module docstring)."""
    if text.isascii():
        folded = text.lower()
        if _LETTER_DIGIT.search(folded):
            folded = _LEET_WORD.sub(lambda m: m.group().translate(_LEET), folded)
        return Folded(folded, None, len(text))
    mapped = _mapped(text, str.lower, _fold_char)
    folded = _NON_ASCII_WORD.sub(_unconfuse, mapped.text)
    if _LETTER_DIGIT.search(folded):
        folded = _LEET_WORD.sub(lambda m: m.group().translate(_LEET), folded)
    return Folded(folded, mapped.origin, len(text))


def compatible(text: str) -> Folded:
    """``text`` in compatibility form, character by character (NFKC: full-width "sk-" reads as ASCII "sk-"),
    without its default-ignorable characters (soft hyphens, zero-width spaces...); case is kept.
    ``text`` itself (no map) unless it holds a character that hides text or reads as ASCII in that form:
    a no-break space or an ellipsis changes nothing a pattern looks for."""
    changed = [] if text.isascii() else list(invisible.disguising(text))
    if not changed:
        return Folded(text, None, len(text))
    pieces: list[str] = []
    origin: list[int] = []
    pos = 0
    for index in changed:  # only these change: CJK or Cyrillic text costs no more
        pieces.append(text[pos:index])
        origin.extend(range(pos, index))
        piece = _compatible_char(text[index])
        pieces.append(piece)
        origin.extend([index] * len(piece))
        pos = index + 1
    pieces.append(text[pos:])
    origin.extend(range(pos, len(text)))
    return Folded("".join(pieces), tuple(origin), len(text))


def _unconfuse(match: re.Match[str]) -> str:
    """Map look-alike letters to Latin in a word that mixes them with Latin letters ("ignore" spelt
    with Cyrillic i, o and e)."""
    word = match.group()
    if any("a" <= c <= "z" for c in word):
        return word.translate(_CONFUSABLES)
    return word


def hidden_runs(text: str) -> list[HiddenRun]:
    """Runs of invisible characters, one entry per run of one kind."""
    if text.isascii():
        return []
    runs: list[HiddenRun] = []
    for match in invisible.IGNORABLE_RUN.finditer(text):
        kind_of_run, run_start = None, match.start()
        for index in range(match.start(), match.end()):
            kind = invisible.kind(text[index])
            if kind != kind_of_run:
                if kind_of_run is not None:
                    runs.append(HiddenRun(kind_of_run, run_start, index))
                kind_of_run, run_start = kind, index
        if kind_of_run is not None:
            runs.append(HiddenRun(kind_of_run, run_start, match.end()))
    return runs


def decode_tag_smuggling(text: str) -> str:
    """The ASCII hidden in Unicode tag characters (U+E0020-U+E007E), in order; empty if none."""
    return "".join(chr(ord(c) - TAG_FIRST) for c in text if TAG_FIRST + 0x20 <= ord(c) <= TAG_FIRST + 0x7E)
