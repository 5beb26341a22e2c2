"""The learned stage of the injection detector: a linear model over words, word pairs and n-grams.

Inference is written here, in pure Python, because no dependency serves: ringfence's runtime has
no numpy or scikit-learn, a transformer costs 100-200 ms per text, and the model is a sum of
weights. Its keys sit in a ``dict`` rather than in a hashed table: Python salts ``str`` hashes per
process, so a stable hash would cost a CRC per n-gram, while a ``dict`` lookup is the cheapest
deterministic one. The vocabulary is pruned to the heaviest weights at training time
(``bench/train_injection_model.py``), which keeps the files a few MB.

Text is scored in windows of ``window`` words, ``stride`` apart: an injection buried in a long
tool result is judged on the words around it, not diluted by the rest. Each word's weight (the
word and its n-grams) is cached, so a scan costs about one lookup per word and one per word pair.
The finding points at the run of words inside the best window that weighs most. Its severity
follows two thresholds set at training time on benign texts the model had not seen: medium (it
makes an injection together with a rule's finding) and high (an injection on its own; a detector
built with ``model_alone=False``, as for tool descriptions, keeps it medium). Below them, a model
that merely leans to injection (logit ``LEAN``, p >= 0.5) gives a low finding: an injection only
beside a rule's medium one.
"""

from __future__ import annotations

import json
import math
import sys
from array import array
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from itertools import accumulate
from typing import Literal

from ringfence.detect.injection_features import TOKEN, word_grams, words
from ringfence.detect.normalize import Folded

MODEL_DIR = "model"
MODEL_NAME = "injection_model"
CACHE_LIMIT = 100_000  # cached words before the cache is emptied
# The model leans to injection (p >= 0.5): a low finding, which with a rule's medium one makes an
# injection (0.15 and 0.45 combine to 0.53). A rule's low finding still needs the medium threshold.
LEAN = 0.0


@dataclass(frozen=True)
class Weights:
    """A trained model: weights by key, the bias, the windows and two thresholds (in logits): above
    ``threshold`` the model's finding is medium (an injection with a rule's finding), above
    ``alone`` high (an injection on its own)."""

    words: dict[str, float]
    pairs: dict[str, float]
    grams: dict[str, float]
    bias: float
    threshold: float
    alone: float
    window: int
    stride: int
    meta: dict[str, object] = field(default_factory=dict)

    @classmethod
    def from_keys(cls, keys: list[str], values: list[float] | array, **settings: object) -> Weights:
        tables: dict[str, dict[str, float]] = {"w": {}, "b": {}, "c": {}}
        for key, value in zip(keys, values, strict=True):
            tables[key[0]][key[2:]] = value
        return cls(tables["w"], tables["b"], tables["c"], **settings)  # type: ignore[arg-type]


@dataclass(frozen=True)
class BestWindow:
    """The score of the best window (bias included) and the run of words in it that weighs most."""

    logit: float
    start: int  # word index of the run of words that weighs most, inside the best window
    end: int


@dataclass(frozen=True)
class ModelVerdict:
    """What the model adds to a scan: its finding's severity and span, and the score behind it."""

    severity: Literal["low", "medium", "high"]
    start: int  # in the original text
    end: int
    logit: float


class InjectionModel:
    """Scores folded text; ``verdict`` says how sure it is and where, in the original text, it
    weighs most."""

    def __init__(self, weights: Weights):
        self.weights = weights
        self._word_cache: dict[str, float] = {}

    def best(self, tokens: list[str]) -> BestWindow:
        """The best-scoring window and, inside it, the run of words with the largest sum."""
        weights = self.weights
        contributions = self._contributions(tokens)
        if not contributions:
            return BestWindow(weights.bias, 0, 0)
        sums = [0.0, *accumulate(contributions)]
        last_start = max(0, len(tokens) - weights.window)
        starts = list(range(0, last_start + 1, weights.stride))
        if starts[-1] != last_start:
            starts.append(last_start)
        start = max(starts, key=lambda s: sums[min(len(tokens), s + weights.window)] - sums[s])
        end = min(len(tokens), start + weights.window)
        run_start, run_end = _heaviest_run(contributions, start, end)
        return BestWindow(weights.bias + sums[end] - sums[start], run_start, run_end)

    def _contributions(self, tokens: list[str]) -> list[float]:
        cache_ = self._word_cache
        if len(cache_) > CACHE_LIMIT:
            cache_.clear()
        pairs = self.weights.pairs
        out = []
        previous = ""
        for word in tokens:
            value = cache_.get(word)
            if value is None:
                value = cache_[word] = self._word_weight(word)
            if previous:
                value += pairs.get(previous + " " + word, 0.0)
            out.append(value)
            previous = word
        return out

    def _word_weight(self, word: str) -> float:
        grams = self.weights.grams
        return self.weights.words.get(word, 0.0) + sum(grams.get(gram, 0.0) for gram in word_grams(word))

    def verdict(self, folded: Folded, *, lean: bool = False) -> ModelVerdict | None:
        """The severity and the original span of the heaviest words, if the text reaches the medium
        threshold (with ``lean``, as soon as the model leans to injection: a low verdict)."""
        best = self.best(words(folded.text))
        if best.logit < (LEAN if lean else self.weights.threshold) or best.end <= best.start:
            return None
        spans = [match.span() for match in TOKEN.finditer(folded.text)]
        start, end = folded.span(spans[best.start][0], spans[best.end - 1][1])
        severity: Literal["low", "medium", "high"] = "low"
        if best.logit >= self.weights.alone:
            severity = "high"
        elif best.logit >= self.weights.threshold:
            severity = "medium"
        return ModelVerdict(severity, start, end, best.logit)


def _heaviest_run(values: list[float], start: int, end: int) -> tuple[int, int]:
    """The contiguous run of ``values[start:end]`` with the largest sum (Kadane), as [from, to)."""
    best_sum, best = -math.inf, (start, start + 1)
    running, run_start = 0.0, start
    for index in range(start, end):
        if running <= 0.0:
            running, run_start = 0.0, index
        running += values[index]
        if running > best_sum:
            best_sum, best = running, (run_start, index + 1)
    return best


SECTIONS = ("words", "pairs", "grams")  # the order of the keys in the files


def read_weights(keys_text: str, weights_bytes: bytes, meta: dict[str, object]) -> Weights:
    """Weights from the files' contents: keys one a line and float32 values, section by section."""
    values = array("f")
    values.frombytes(weights_bytes)
    keys = keys_text.split("\n") if keys_text else []
    if len(keys) != len(values):
        raise ValueError(f"injection model: {len(keys)} keys but {len(values)} weights")
    tables, at = [], 0
    for name in SECTIONS:
        count = int(meta["sections"][name])  # type: ignore[index]
        tables.append(dict(zip(keys[at : at + count], values[at : at + count], strict=True)))
        at += count
    settings = {name: meta[name] for name in ("bias", "threshold", "alone", "window", "stride")}
    return Weights(*tables, **settings, meta=meta)  # type: ignore[arg-type]


@cache
def packaged_model() -> InjectionModel:
    """The model shipped in ``ringfence/detect/model/`` (read once per process, no network)."""
    folder = resources.files("ringfence.detect").joinpath(MODEL_DIR)
    meta = json.loads(folder.joinpath(MODEL_NAME + ".json").read_text(encoding="utf-8"))
    keys = folder.joinpath(MODEL_NAME + ".keys").read_text(encoding="utf-8")
    weights = folder.joinpath(MODEL_NAME + ".weights").read_bytes()
    if meta.get("byteorder", "little") != sys.byteorder:
        swapped = array("f", weights)
        swapped.byteswap()
        weights = swapped.tobytes()
    return InjectionModel(read_weights(keys, weights, meta))
