"""Redaction of personal data and secrets in text and JSON-like values.

Pure, offline and deterministic: no I/O, no models, stdlib ``re`` only. It is written for this
project rather than built on Presidio because it has to be cheap enough to run on every log line
(see ``bench/redaction_vs_presidio.py``).

Replacement is either a tag (``[EMAIL]``) or a keyed pseudonym (``[EMAIL:3f9a1c2b]``, the first
8 hex digits of HMAC-SHA256(key, normalised value)), so that one value can be followed across
records without being readable. Hash mode needs a key; there is no default key.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ringfence.detect.patterns import PASSWORD_WORDS, PEM_BEGIN, RULES, TYPES, Rule, anchors_in

Replacement = Literal["tag", "hash"]

# Texts longer than this are scanned in windows that overlap by WINDOW_OVERLAP characters; a
# finding is kept by the window it starts in. Findings are bounded well below the overlap
# (the longest, a JWT, is capped at 24 KiB), so windowing changes no result; it bounds the work
# any single regex search can do.
WINDOW = 256 * 1024
WINDOW_OVERLAP = 32 * 1024
MIN_HASH_KEY_BYTES = 16
_DIGIT = re.compile(r"\d")
PRIORITY = {name: rank for rank, name in enumerate(TYPES)}  # lower wins an overlap
_LITERALS = tuple(sorted({literal for rule in RULES for literal in rule.literals}))
_FOLDED_LITERALS = tuple(sorted({literal for rule in RULES for literal in rule.folded_literals}))
_ANY_LITERAL = re.compile("|".join(map(re.escape, _LITERALS)))
_ANY_FOLDED_LITERAL = re.compile("|".join(map(re.escape, _FOLDED_LITERALS)))
_NO_LITERALS = (False,) * len(_LITERALS)
_NO_FOLDED_LITERALS = (False,) * len(_FOLDED_LITERALS)
_NO_ANCHORS: frozenset[str] = frozenset()
_DIGITS_THAT_MATTER = max(rule.min_digits for rule in RULES)  # more digits than this enable no further rule
_MAX_KEYS = 4096  # prefilter keys remembered per redactor (a key is a few booleans, a count and anchor words)
_PEM_BODY_LINE = re.compile(r"[A-Za-z0-9+/=]*|(?:Proc-Type|DEK-Info|Comment):.*")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SECRET_KEY_NAME = re.compile(
    r"(?:^|[_\-. ])(?:password|passwd|pwd|passphrase|pass|secret|client_secret|token|authorization|auth|cookie"
    r"|set_cookie|api_?key|(?:secret|private|access|signing|encryption|auth)_?key|credentials?|session(?:_?id)?"
    r"|sessionid|x_api_key|" + "|".join(re.escape(word).replace(r"\ ", "_?") for word in PASSWORD_WORDS) + r")$"
)


@dataclass(frozen=True, slots=True)
class Finding:
    """A span of the scanned text that holds a value of ``type`` (the value itself is not kept)."""

    type: str
    start: int
    end: int


class Redactor:
    """Finds and replaces personal data and secrets; see ``TYPES`` for what it looks for.

    ``types`` limits detection to some of ``TYPES``; ``replacement`` is ``"tag"`` or ``"hash"``
    (the latter needs ``hash_key``, at least 16 bytes).
    """

    def __init__(
        self,
        types: Iterable[str] | None = None,
        replacement: Replacement = "tag",
        hash_key: bytes | None = None,
    ) -> None:
        wanted = frozenset(TYPES if types is None else types)
        unknown = sorted(wanted - set(TYPES))
        if unknown:
            raise ValueError(f"unknown redaction types {unknown}; known: {', '.join(TYPES)}")
        if replacement not in ("tag", "hash"):
            raise ValueError(f"replacement must be 'tag' or 'hash', not {replacement!r}")
        if replacement == "hash":
            if not hash_key:
                raise ValueError("hash replacement needs hash_key (there is no default key)")
            if len(hash_key) < MIN_HASH_KEY_BYTES:
                raise ValueError(f"hash_key must be at least {MIN_HASH_KEY_BYTES} bytes")
        self.types = wanted
        self.replacement = replacement
        self._hash_key = hash_key
        self._rules: tuple[Rule, ...] = tuple(rule for rule in RULES if rule.type in wanted)
        self._by_key: dict[tuple[Any, ...], tuple[tuple[int, Rule], ...]] = {}

    # -- finding ---------------------------------------------------------------------------------

    def find(self, text: str) -> list[Finding]:
        """Non-overlapping findings in order; on overlap the higher-priority type, then the longer, wins."""
        return resolve(self._candidates(text), text)

    def types_found(self, text: str) -> set[str]:
        """The types of :meth:`find`'s findings, without making them when one candidate or none is found."""
        candidates = self._candidates(text)
        if not candidates:
            return set()
        if len(candidates) == 1:  # what resolve would keep
            return {candidates[0][3]}
        return {finding.type for finding in resolve(candidates, text)}

    def _candidates(self, text: str) -> list[tuple[int, int, int, str]]:
        """``(priority, start, end, type)`` of every rule's findings, overlapping ones included."""
        length = len(text)
        folded = text.lower()
        lowered = folded if len(folded) == length else None  # a few lower-case to two: rules then search
        # What the cheap prefilters look at, reduced to a small key; the rules for a key are
        # remembered (the key is a count, a flag and a few words, never the text).
        if text.isascii():  # then \d is 0-9, and deleting those from the bytes counts them in one C pass
            digits = length - len(text.encode().translate(None, b"0123456789"))
        else:
            digits = len(_DIGIT.findall(text))
        anchors = anchors_in(folded)
        # One search says whether any literal is there at all: most strings hold none.
        literals = _NO_LITERALS
        if _ANY_LITERAL.search(text):
            literals = tuple([needle in text for needle in _LITERALS])
        folded_literals = _NO_FOLDED_LITERALS
        if _ANY_FOLDED_LITERAL.search(folded):
            folded_literals = tuple([needle in folded for needle in _FOLDED_LITERALS])
        key = (
            digits if digits < _DIGITS_THAT_MATTER else _DIGITS_THAT_MATTER,
            folded != text,  # an ASCII capital changes under lower()
            frozenset(anchors) if anchors else _NO_ANCHORS,
            literals,
            folded_literals,
        )
        rules = self._by_key.get(key)
        if rules is None:
            rules = self._applicable(key)
        candidates: list[tuple[int, int, int, str]] = []
        if not rules:
            return candidates
        if length <= WINDOW:  # one window, the usual case: every rule scans the whole text
            for priority, rule in rules:
                for start, end in rule.spans(text, 0, length, lowered):
                    candidates.append((priority, start, end, rule.type))
            return candidates
        for window_start in range(0, length, WINDOW):
            window_end = min(length, window_start + WINDOW + WINDOW_OVERLAP)
            keep_before = window_start + WINDOW if window_end < length else length + 1
            for priority, rule in rules:
                if rule.windowed:
                    for start, end in rule.spans(text, window_start, window_end, lowered):
                        if start < keep_before:
                            candidates.append((priority, start, end, rule.type))
        for priority, rule in rules:
            if not rule.windowed:
                for start, end in rule.spans(text, 0, length, lowered):
                    candidates.append((priority, start, end, rule.type))
        return candidates

    def _applicable(self, key: tuple[Any, ...]) -> tuple[tuple[int, Rule], ...]:
        """``(priority, rule)`` for the rules whose prefilters pass on a text of this key, remembered."""
        digits, changed, anchors, literals, folded_literals = key
        present = {needle for needle, found in zip(_LITERALS, literals, strict=True) if found}
        present_folded = {needle for needle, found in zip(_FOLDED_LITERALS, folded_literals, strict=True) if found}
        rules = tuple(
            (PRIORITY[rule.type], rule)
            for rule in self._rules
            if digits >= rule.min_digits
            and (changed or not rule.needs_upper)
            and not (rule.anchors and anchors.isdisjoint(rule.anchors))
            and not (rule.literals and present.isdisjoint(rule.literals))
            and not (rule.folded_literals and present_folded.isdisjoint(rule.folded_literals))
        )
        if len(self._by_key) >= _MAX_KEYS:
            self._by_key.clear()
        self._by_key[key] = rules
        return rules

    # -- replacing -------------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        """``text`` with every finding replaced by its tag or keyed pseudonym."""
        return self.replace(text, self.find(text))

    def replace(self, text: str, findings: list[Finding]) -> str:
        """``text`` with the given findings (from :meth:`find`) replaced."""
        if not findings:
            return text
        parts: list[str] = []
        pos = 0
        for finding in findings:
            parts.append(text[pos : finding.start])
            parts.append(self._replacement(finding.type, text[finding.start : finding.end]))
            pos = finding.end
        parts.append(text[pos:])
        return "".join(parts)

    def find_lines(self, lines: Iterable[str]) -> Iterator[tuple[str, str, list[Finding]]]:
        """``(line, newline, findings)`` per line, carrying one piece of state: a private key that
        spans lines.

        After a line that opens a private key block without closing it, each following line that
        looks like PEM body (base64, ``Proc-Type:``/``DEK-Info:`` headers or blank) is a
        ``PRIVATE_KEY`` finding as a whole, and so is the footer line up to its closing dashes;
        the first other line ends the block.
        """
        in_key = False
        for line in lines:
            body = line.rstrip("\r\n")
            newline = line[len(body) :]
            if in_key:
                footer = body.find("-----END ")
                if footer != -1:
                    in_key = False
                    close = body.find("-----", footer + 9)
                    key_end = close + 5 if close != -1 else len(body)
                    rest = [Finding(f.type, f.start + key_end, f.end + key_end) for f in self.find(body[key_end:])]
                    yield body, newline, [Finding("PRIVATE_KEY", 0, key_end), *rest]
                    continue
                if _PEM_BODY_LINE.fullmatch(body.strip()):
                    yield body, newline, [Finding("PRIVATE_KEY", 0, len(body))] if body else []
                    continue
                in_key = False
            yield body, newline, self.find(body)
            if "PRIVATE_KEY" in self.types and opens_private_key(body):
                in_key = True

    def redact_lines(self, lines: Iterable[str]) -> Iterator[str]:
        """Redact a stream line by line (see :meth:`find_lines` for keys that span lines)."""
        for body, newline, findings in self.find_lines(lines):
            yield self.replace(body, findings) + newline

    def redact_value(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string redacted; keys are kept as they are.

        The value of a secret-looking key (``password``, ``token``, ``authorization``, ``cookie``,
        ``api_key``, ...) is replaced wholesale, including every leaf below it. Integers of seven
        digits or more are checked too (a card number may arrive as a JSON number).
        """
        return self._walk(value, None, secret=False, found=None)

    def find_value(self, value: Any) -> list[tuple[str, Finding]]:
        """``(JSON pointer, finding)`` for every finding :meth:`redact_value` would replace."""
        found: list[tuple[str, Finding]] = []
        self._walk(value, "", secret=False, found=found)
        return found

    def _walk(self, value: Any, path: str | None, secret: bool, found: list[tuple[str, Finding]] | None) -> Any:
        """``path`` is the JSON pointer of ``value`` when findings are collected, else ``None`` (not built)."""
        if isinstance(value, Mapping):
            return {
                key: self._walk(item, None if path is None else f"{path}/{_pointer_token(key)}",
                                secret or is_secret_key(key), found)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._walk(item, None if path is None else f"{path}/{index}", secret, found)
                    for index, item in enumerate(value)]
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | float):
            if not secret and not (isinstance(value, int) and abs(value) >= 1_000_000):
                return value
            text = str(value)
        elif isinstance(value, str):
            text = value
        else:
            return value
        if secret and "SECRET" in self.types:
            findings = [Finding("SECRET", 0, len(text))] if text else []
        else:
            findings = self.find(text)
        if found is not None and path is not None:
            found.extend((path, finding) for finding in findings)
        if not findings:
            return value
        return self.replace(text, findings)

    def _replacement(self, type_: str, value: str) -> str:
        if self.replacement == "tag":
            return f"[{type_}]"
        assert self._hash_key is not None
        digest = hmac.new(self._hash_key, normalize_value(type_, value).encode(), hashlib.sha256).hexdigest()
        return f"[{type_}:{digest[:8]}]"


def _pointer_token(key: object) -> str:
    """RFC 6901 §3: "~" is written "~0" and "/" is written "~1"."""
    return str(key).replace("~", "~0").replace("/", "~1")


def opens_private_key(line: str) -> bool:
    """Whether ``line`` has a private key header with no footer after it."""
    match = None
    for match in PEM_BEGIN.finditer(line):  # noqa: B007 - the last header is the one that counts
        pass
    return match is not None and "-----END " not in line[match.end() :]


def is_secret_key(key: object) -> bool:
    """Whether a mapping key names a secret: ``password``, ``accessToken``, ``x-api-key``, ``Cookie``..."""
    if not isinstance(key, str) or len(key) > 100:
        return False
    return _names_secret(key)


@functools.lru_cache(maxsize=4096)  # log lines and results repeat the same field names on every call
def _names_secret(key: str) -> bool:
    name = _CAMEL_BOUNDARY.sub("_", key).lower().replace("-", "_")
    return _SECRET_KEY_NAME.search(name) is not None


def normalize_value(type_: str, value: str) -> str:
    """The form that is hashed, so that one value written two ways gets one pseudonym."""
    if type_ == "EMAIL":
        return value.lower()
    if type_ in ("CARD", "SSN"):
        return "".join(char for char in value if char.isdigit())
    if type_ == "PHONE":
        digits = "".join(char for char in value if char.isdigit())
        return "+" + digits if value.startswith("+") else digits
    if type_ == "IBAN":
        return value.replace(" ", "").upper()
    if type_ == "IP":
        try:
            return ipaddress.ip_address(value).compressed
        except ValueError:
            return value
    return value.strip()


def resolve(candidates: list[tuple[int, int, int, str]], text: str) -> list[Finding]:
    """Non-overlapping spans: priority first, then length, then position.

    A candidate that overlaps spans already chosen keeps the parts outside them that still hold a
    digit (trimmed of spaces), so that a number read two ways is never left half visible.
    """
    if not candidates:
        return []
    if len(candidates) == 1:
        _, start, end, type_ = candidates[0]
        return [Finding(type_, start, end)]
    candidates.sort(key=lambda c: (c[0], c[1] - c[2], c[1]))
    starts: list[int] = []
    chosen: list[Finding] = []
    for _, start, end, type_ in candidates:
        pieces = _uncovered(start, end, starts, chosen)
        if pieces != [(start, end)]:
            pieces = [_trimmed(text, a, b) for a, b in pieces if any(c.isdigit() for c in text[a:b])]
        for piece_start, piece_end in pieces:
            index = bisect.bisect_left(starts, piece_start)
            starts.insert(index, piece_start)
            chosen.insert(index, Finding(type_, piece_start, piece_end))
    return chosen


def _uncovered(start: int, end: int, starts: list[int], chosen: list[Finding]) -> list[tuple[int, int]]:
    """The parts of ``[start, end)`` that no chosen finding covers."""
    pieces = []
    index = max(0, bisect.bisect_right(starts, start) - 1)
    pos = start
    while index < len(chosen) and chosen[index].start < end:
        finding = chosen[index]
        if finding.end > pos:
            if finding.start > pos:
                pieces.append((pos, finding.start))
            pos = max(pos, finding.end)
        index += 1
    if pos < end:
        pieces.append((pos, end))
    return pieces


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return start, end


# A request ID ringfence makes (uuid4().hex) and a call's arguments hash (events.argument_summary): 32
# lower-case hex digits, new on nearly every log line. No rule finds anything in such a string: the
# digit rules need a separator, a "+", or a non-word character after at most 19 digits, the letter rules
# an upper-case letter, "@", ":", "." or "://", and no anchor is spelt in a-f alone but "acca" (whose
# AWS key must be upper-case). tests/detect/test_pii.py holds every rule to that.
_HEX_ID = re.compile(r"[0-9a-f]{32}")


class RememberingRedactor(Redactor):
    """A :class:`Redactor` that remembers short strings in which it found nothing.

    Log lines repeat the same short strings (tool names, outcomes, paths, hashes) on every line;
    remembering that they are clean makes a line several times cheaper. Only clean strings are
    kept, so no personal data is held here, and the memory is dropped whole when it is full.
    """

    MAX_LENGTH = 200
    MAX_REMEMBERED = 4096

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clean: set[str] = set()

    def redact(self, text: str) -> str:
        if text in self._clean:  # a line's repeated strings: no finding to make or replace
            return text
        return super().redact(text)

    def find(self, text: str) -> list[Finding]:
        if text in self._clean:
            return []
        if len(text) == 32 and _HEX_ID.fullmatch(text):
            return []  # new on every line, so neither searched nor remembered (see _HEX_ID)
        findings = super().find(text)
        if not findings and len(text) <= self.MAX_LENGTH:
            if len(self._clean) >= self.MAX_REMEMBERED:
                self._clean.clear()
            self._clean.add(text)
        return findings


_DEFAULT: Redactor | None = None


def redact_value(value: Any, redactor: Redactor | None = None) -> Any:
    """:meth:`Redactor.redact_value` with ``redactor``, or a tag-mode redactor for every type."""
    global _DEFAULT
    if redactor is None:
        if _DEFAULT is None:
            _DEFAULT = Redactor()
        redactor = _DEFAULT
    return redactor.redact_value(value)
