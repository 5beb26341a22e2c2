"""Secrets written so that the redactor's patterns miss them, found in the text with the trick undone.

An :class:`UnmaskingRedactor` finds what a :class:`~ringfence.detect.redactor.Redactor` finds and,
where the text holds such a trick, also what its patterns find

- in its compatibility form (NFKC character by character, default-ignorable characters dropped):
  a key in full-width letters, or with a soft hyphen or zero-width space inside a key; every type;
- with letter-spacing collapsed (``s k - p r o j - …``); the ``unmasked`` types only (secrets):
  collapsed numbers and words would read as personal data that is not there;
- in runs of base64 that decode to text (bounded, see ``decoders.base64_texts``); the ``unmasked``
  types only, and a finding covers the whole run.

Every finding is a span of the original text, so a replacement removes the characters that hid the
value too. Plain ASCII text pays for two cheap checks (a search for 6 single-spaced characters, a
C-speed pass over its bytes for a run of base64) and never needs its compatibility form; other
text, one more search for a character that hides text or is ASCII in disguise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ringfence.detect.decoders import base64_texts, letter_spaced, may_hide_in_ascii
from ringfence.detect.normalize import Folded, compatible
from ringfence.detect.redactor import PRIORITY, Finding, Redactor, resolve

Candidate = tuple[int, int, int, str]  # (priority, start, end, type), as Redactor._candidates makes them
# ASCII text shorter than this can hold neither a letter-spaced run (8 characters and 7 spaces) nor a
# base64 run (24 characters).
SHORTEST_DISGUISE = 15


class UnmaskingRedactor(Redactor):
    """A :class:`Redactor` that also finds values hidden by full-width forms, invisible characters,
    letter-spacing and base64 (see the module docstring); ``unmasked`` names the types looked for in
    letter-spaced and base64-decoded text."""

    def __init__(self, *args: Any, unmasked: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unmasked = frozenset(unmasked) & self.types

    def find(self, text: str) -> list[Finding]:
        if is_plain(text):
            return super().find(text)
        return resolve(self._candidates(text) + self._unmasked_candidates(text), text)

    def types_found(self, text: str, *, plain: bool = False) -> set[str]:
        """``plain``: the caller knows :func:`is_plain` holds for ``text`` (it holds for every part
        of a text it holds for), so it is not checked again."""
        extra = [] if plain or is_plain(text) else self._unmasked_candidates(text)
        if not extra:
            return super().types_found(text)
        return {finding.type for finding in resolve(self._candidates(text) + extra, text)}

    def _unmasked_candidates(self, text: str) -> list[Candidate]:
        found: list[Candidate] = []
        view = compatible(text)
        spaced = list(letter_spaced(view.text))
        if view.origin is not None or spaced:
            collapsed: list[tuple[int, int]] = []
            if spaced:
                view, collapsed = _collapsed(view, spaced)
            for priority, start, end, type_ in self._candidates(view.text):
                span_start, span_end = view.span(start, end)
                if type_ in self.unmasked or not any(a < span_end and span_start < b for a, b in collapsed):
                    found.append((priority, span_start, span_end, type_))
        if self.unmasked:
            for start, end, decoded in base64_texts(text):
                types = {candidate[3] for candidate in self._candidates(decoded)} & self.unmasked
                if types:
                    first = min(types, key=PRIORITY.__getitem__)
                    found.append((PRIORITY[first], start, end, first))
        return found


def is_plain(text: str) -> bool:
    """The fast path, for nearly every tool result: ASCII text needs no compatibility form, and without
    a hint of letter-spacing or a run of base64 it hides nothing these tricks could."""
    return text.isascii() and (len(text) < SHORTEST_DISGUISE or not may_hide_in_ascii(text))


def _collapsed(view: Folded, runs: list[re.Match[str]]) -> tuple[Folded, list[tuple[int, int]]]:
    """``view`` with each letter-spaced run closed up, and the runs' original spans."""
    origin = view.origin if view.origin is not None else range(len(view.text))
    pieces: list[str] = []
    kept: list[int] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for run in runs:
        start, end = run.span()
        pieces.append(view.text[pos:start])
        kept.extend(origin[pos:start])
        for index in range(start, end):  # single spaces go; a wider gap between words becomes one space
            char = view.text[index]
            if char != " " or (view.text[index + 1] == " " and view.text[index - 1] != " "):
                pieces.append(char)
                kept.append(origin[index])
        spans.append((origin[start], origin[end - 1] + 1))
        pos = end
    pieces.append(view.text[pos:])
    kept.extend(origin[pos:])
    return Folded("".join(pieces), tuple(kept), view.original_length), spans

