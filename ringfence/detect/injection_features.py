"""The features of the injection model: words, word pairs and character n-grams of folded text.

Shared by the training script (``bench/train_injection_model.py``) and inference
(``injection_model``), so both see exactly the same keys. Text is folded first (``normalize.fold``:
NFKC, case, diacritics, invisible characters, look-alike letters and leetspeak), so the features
survive those obfuscations; character n-grams of each word (padded with ``<`` and ``>``) survive
split or misspelt words and inflection, and Chinese, Japanese and Korean characters count as one
word each, so their pairs are character bigrams. A sentence break counts as a word too (``BOUNDARY``).

Keys carry a namespace: ``w:word``, ``b:first second``, ``c:gram``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# Han, kana and Hangul one character at a time; other scripts as runs of letters or of digits.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
# Where a sentence or clause breaks (a full stop, colon, semicolon, question or exclamation mark before a
# space, a line break, their CJK forms), with the space after it, is one token read as BOUNDARY:
# "TODO: Send it." gives "todo . send it .", so a word that opens a sentence (an imperative, a
# label) makes a pair of its own. Dots inside "x.com" or "3.5" do not break.
_MARK = r"[.!?:;]+(?=\s|$)|[\u3002\uff01\uff1f\uff1a]|\n"
TOKEN = re.compile(rf"[{_CJK}]|[^\W\d_{_CJK}]+|\d+|(?:(?:{_MARK})\s*)+")
BOUNDARY = "."
GRAM_SIZES = (3, 5)
LONGEST_WORD = 32  # longer words contribute the n-grams of their first 32 characters


def words(folded: str) -> list[str]:
    """The words of folded text, in order, with BOUNDARY where a sentence or clause breaks."""
    return [token if token[0].isalnum() else BOUNDARY for token in TOKEN.findall(folded)]


def word_grams(word: str) -> list[str]:
    """Character n-grams of ``<word>`` (a short word is also its own gram)."""
    padded = "<" + word[:LONGEST_WORD] + ">"
    length = len(padded)
    grams = [padded[i : i + size] for size in GRAM_SIZES for i in range(length - size + 1)]
    return grams or [padded]


def word_keys(word: str) -> list[str]:
    """The keys that a word brings on its own: the word and its n-grams."""
    return ["w:" + word, *("c:" + gram for gram in word_grams(word))]


def window_keys(tokens: list[str], start: int, end: int) -> Iterator[str]:
    """Every key of ``tokens[start:end]`` (with repeats: the model sums them); the first word pairs
    with the word before the window, as in inference."""
    previous = tokens[start - 1] if start > 0 else ""
    for word in tokens[start:end]:
        yield from word_keys(word)
        if previous:
            yield "b:" + previous + " " + word
        previous = word
