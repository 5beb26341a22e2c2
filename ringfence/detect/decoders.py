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
_SPACED_LETTERS = re.compile(r"(?<!\w)\w(?: \w){4,}(?!\w)")


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
        despaced = _SPACED_LETTERS.sub(lambda m: m.group().replace(" ", ""), text[:MAX_DECODED_CHARS])
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


def _printable(data: bytes) -> str:
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    letters = sum(c.isalpha() or c == " " for c in decoded)
    return decoded if decoded and letters >= 0.7 * len(decoded) else ""


def _b64(value: str) -> str:
    padded = value + "=" * (-len(value.rstrip("=")) % 4)
    try:
        return _printable(base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True))
    except (binascii.Error, ValueError):
        return ""


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
