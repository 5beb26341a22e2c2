"""Decoded copies of text for the injection rules to scan again: encodings and cheap scrambles.

Each decoder is bounded: at most MAX_DECODED_RUNS runs per text, each cut at MAX_DECODED_CHARS,
and a decoded run counts only when it reads as text (mostly letters and spaces).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import urllib.parse
from collections.abc import Iterator

MAX_DECODED_RUNS = 16
MAX_DECODED_CHARS = 65536

# One pass finds every long base64/base32/hex-looking token; Python then decides which it is.
_ENCODED_RUN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{24,}+={0,6}")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_BASE32 = re.compile(r"[A-Z2-7]+=*")
_BINARY_RUN = re.compile(r"(?<![01])(?:[01]{8}[ ]?){6,}")
_PERCENT_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2}[^\s%]{0,60}){3,}")
_UNICODE_ESCAPE_RUN = re.compile(r"(?:\\u[0-9A-Fa-f]{4}){4,}")
# Letter-spaced text: single letters one space apart, words two or three ("I g n o r e   t h e   u s e r ' s").
_SPACED_LETTERS = re.compile(r"(?<![\w'\u2019])[\w'\u2019](?: {1,3}[\w'\u2019]){4,}(?![\w'\u2019])")
_WORD_GAP = re.compile(r" {2,}")
# Letter-spacing hides a secret from patterns ("s k - p r o j - ...", words apart by 2 or 3 spaces);
# the hint, 6 single-spaced characters, is a cheap necessary condition for what letter_spaced finds.
# A double quote counts as a space, so that a string reads the same alone and inside its JSON.
_LETTER_SPACED = re.compile(r'(?<![^\s"])[^\s"](?: {1,3}[^\s"]){7,}(?![^\s"])')
_LETTER_SPACED_HINT = re.compile(r" \S \S \S \S \S \S ")
# A base64-wrapped PEM key of RSA-4096 is about 4.5 KB; longer runs are data, not a wrapped secret.
MAX_BASE64_RUN = 16 * 1024
_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")
_B64_BYTES = bytes(0x61 if byte in _B64_ALPHABET else 0x20 for byte in range(256))
_B64_RUN_MARK = b"a" * 24  # what a run of 24 base64 characters becomes under _B64_BYTES
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def decoded_copies(text: str, folded: str) -> Iterator[tuple[str, int, int, str]]:
    """``(via, start, end, decoded)`` for every encoded or scrambled copy worth scanning again:
    base64/32, hex, binary, %-escapes, \\u escapes, s p a c e d text, and the whole text in ROT13 or
    reversed when a rotated or reversed key word shows it is there. ``folded`` is the folded text."""
    budget = MAX_DECODED_RUNS
    runs: list[tuple[int, int, str, str]] = []
    for match in _ENCODED_RUN.finditer(text):
        value = match.group()
        if _HEX.fullmatch(value):
            runs.append((match.start(), match.end(), _hex(value), "hex"))
        elif _BASE32.fullmatch(value):
            runs.append((match.start(), match.end(), _b32(value) or _b64(value), "base32"))
        else:
            runs.append((match.start(), match.end(), _b64(value), "base64"))
        if len(runs) >= budget:
            break
    # Cheap gates first: a binary run needs 48 zeros and ones, %-escapes need three "%".
    if text.count("0") + text.count("1") >= 48:
        runs.extend((m.start(), m.end(), _binary(m.group()), "binary") for m in _BINARY_RUN.finditer(text))
    if text.count("%") >= 3:
        for match in _PERCENT_RUN.finditer(text):
            start = max(text.rfind(" ", max(0, match.start() - 60), match.start()) + 1, match.start() - 60)
            runs.append((start, match.end(), _percent(text[start : match.end()]), "percent"))
    if "\\u" in text:
        runs.extend(
            (m.start(), m.end(), _unicode_escape(m.group()), "unicode_escape")
            for m in _UNICODE_ESCAPE_RUN.finditer(text)
        )
    for start, end, decoded, via in runs[:budget]:
        if decoded:
            yield via, start, end, decoded[:MAX_DECODED_CHARS]
    spaced = _SPACED_LETTERS.search(text)
    if spaced:
        despaced = _SPACED_LETTERS.sub(_despace, text[:MAX_DECODED_CHARS])
        yield "spaced", spaced.start(), len(text), despaced
    if len(text) <= MAX_DECODED_CHARS:
        if any(word in folded for word in _ROT13_TELLS):
            yield "rot13", 0, len(text), codecs.encode(text, "rot13")
        if any(word in folded for word in _REVERSED_TELLS):
            yield "reversed", 0, len(text), text[::-1]


# Rotated or reversed text is decoded only when a rotated/reversed key word shows it is there.
_KEY_WORDS = ("ignore", "disregard", "forget", "instructions", "system prompt", "override", "bypass", "reveal")
_ROT13_TELLS = tuple(codecs.encode(word, "rot13") for word in _KEY_WORDS)
_REVERSED_TELLS = tuple(word[::-1] for word in _KEY_WORDS)


def _despace(match: re.Match[str]) -> str:
    """One letter-spaced run as words: single spaces join letters, wider gaps part words."""
    return " ".join(word.replace(" ", "") for word in _WORD_GAP.split(match.group()))


def _printable(data: bytes) -> str:
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    letters = sum(c.isalpha() or c == " " for c in decoded)
    return decoded if decoded and letters >= 0.7 * len(decoded) else ""


def _b64(value: str) -> str:
    data = _b64_bytes(value)
    return _printable(data) if data is not None else ""


def _b64_bytes(value: str) -> bytes | None:
    """The bytes of standard or URL-safe base64, padded or not; None if it is not base64."""
    core = value.rstrip("=")
    padded = core + "=" * (-len(core) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        return None


def base64_texts(text: str) -> Iterator[tuple[int, int, str]]:
    """``(start, end, decoded)`` for each run of base64 in ``text`` (24 to MAX_BASE64_RUN characters,
    standard or URL-safe) that decodes to UTF-8 text without control characters other than white
    space; at most MAX_DECODED_RUNS of them. Binary data (images, random ids) fails on its first 24
    bytes and a run in one case (words, hex digests) is not decoded, so a text full of them costs
    little more than finding the runs."""
    if len(text) < 24:
        return
    # Most texts have no run of 24 base64 characters: one C-speed pass over the bytes tells, and in
    # ASCII text (bytes are characters) finds the runs too.
    data = text.encode("utf-8", "surrogatepass")
    marks = data.translate(_B64_BYTES)
    first = marks.find(_B64_RUN_MARK)
    if first == -1:
        return
    runs = _marked_runs(text, marks, first) if len(data) == len(text) else _regex_runs(text)
    budget = MAX_DECODED_RUNS
    for start, end in runs:
        value = text[start:end]
        if len(value) > MAX_BASE64_RUN or value == value.lower() or value == value.upper():
            # Base64 mixes both cases (24 random base64 characters lack one with odds of 1 in 135,000);
            # hyphenated words, hex digests and numbers are in one case or none: not decoded.
            continue
        head = _b64_bytes(value[:32]) if len(value) > 32 else _b64_bytes(value)
        if head is None or _CONTROL_BYTES.search(head):
            continue
        data = _b64_bytes(value)
        try:
            decoded = data.decode("utf-8") if data is not None else ""
        except UnicodeDecodeError:
            continue
        if decoded and not _CONTROL_CHARACTERS.search(decoded):
            yield start, end, decoded
            budget -= 1
            if budget == 0:
                return


def may_hide_in_ascii(text: str) -> bool:
    """For ASCII ``text``: whether it can hold what :func:`letter_spaced` or :func:`base64_texts` find
    (6 single-spaced characters; a run of 24 base64 characters). False for nearly every field value,
    at the cost of two C-speed passes."""
    if len(text) >= 15 and _LETTER_SPACED_HINT.search(text):
        return True
    return len(text) >= 24 and text.encode("ascii").translate(_B64_BYTES).find(_B64_RUN_MARK) != -1


def _marked_runs(text: str, marks: bytes, found: int) -> Iterator[tuple[int, int]]:
    """The spans of ``_ENCODED_RUN`` in ASCII ``text``, from its ``_B64_BYTES`` translation."""
    while found != -1:
        start = marks.rfind(b" ", 0, found) + 1
        end = marks.find(b" ", found)
        end = len(marks) if end == -1 else end
        padded = end
        while padded < len(text) and padded - end < 6 and text[padded] == "=":
            padded += 1
        yield start, padded
        found = marks.find(_B64_RUN_MARK, end)


def _regex_runs(text: str) -> Iterator[tuple[int, int]]:
    for match in _ENCODED_RUN.finditer(text):
        yield match.span()


def letter_spaced(text: str) -> Iterator[re.Match[str]]:
    """Runs of 8 or more single characters with one space between each, or two or three between
    words ("p a s s w o r d :   h u n t e r 2"), in a text with 6 of them single-spaced."""
    if len(text) >= 15 and _LETTER_SPACED_HINT.search(text):
        yield from _LETTER_SPACED.finditer(text)


def _b32(value: str) -> str:
    padded = value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 8)
    try:
        return _printable(base64.b32decode(padded))
    except (binascii.Error, ValueError):
        return ""


def _hex(value: str) -> str:
    try:
        return _printable(bytes.fromhex(value))
    except ValueError:
        return ""


def _binary(value: str) -> str:
    octets = value.split() if " " in value else [value[i : i + 8] for i in range(0, len(value), 8)]
    return _printable(bytes(int(octet, 2) for octet in octets if len(octet) == 8))


def _percent(value: str) -> str:
    return urllib.parse.unquote(value)


def _unicode_escape(value: str) -> str:
    return "".join(chr(int(value[i + 2 : i + 6], 16)) for i in range(0, len(value), 6))
