"""Prompt-injection detection: deterministic rules over folded text, plus pluggable classifiers.

Offline, written here rather than taken from a DeBERTa-class classifier because speed is the
point: a scan costs well under a millisecond of CPU per kilobyte on dense text and tens of
microseconds for a short string (``bench/injection_eval.py``), against 100-200 ms for a
transformer on CPU, so it can run on every tool result. The rules are in ``injection_rules``, the
decoders in ``decoders``. When the rules do not make the text an injection, a small linear model
shipped with the package (``injection_model``) reads it too, and the copies the decoders reveal,
and may add one finding, rule ``model``, on the words it weighs most: low when it leans to
injection (an injection only beside a rule's medium finding), medium (an injection beside any
rule's finding) or, when it is sure, high. Text that addresses the model by design, such as an MCP
tool description, is scanned with ``model_alone=False``: there the model's finding is never more
than medium, so it counts only beside a rule's. Other classifiers can be added through
``extra_classifiers``.

Each rule has a severity. The verdict's score is a noisy-or over the distinct rules that fired
(high 0.9, medium 0.45, low 0.15); text is an injection at 0.5 or more: one high finding, two
medium ones, or a medium one with a low one. Words that only sound forceful ("ignore the previous
email") match nothing: the override rules need an instruction-like target.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from ringfence.detect.decoders import decoded_copies
from ringfence.detect.injection_model import InjectionModel, ModelVerdict, packaged_model
from ringfence.detect.injection_rules import RULES, InjectionRule, Severity
from ringfence.detect.normalize import Folded, HiddenRun, decode_tag_smuggling, fold, hidden_runs

SEVERITY_WEIGHT: dict[str, float] = {"low": 0.15, "medium": 0.45, "high": 0.9}
INJECTION_THRESHOLD = 0.5
MAX_KEYWORD_HITS = 2000  # past this many hits of one keyword, a rule scans the whole text (still linear)
WINDOW_AFTER_KEYWORD = 300  # no rule's match extends further than this past its keyword
WHOLE_TEXT_BELOW = 2048  # shorter texts are scanned whole by every rule whose keyword occurs
HiddenCopy = tuple[str, int, int, Folded]  # how it was hidden, where (start, end in the text), the copy folded


@dataclass(frozen=True, slots=True)
class InjectionFinding:
    """One rule that fired, where (in the original text), and how much it weighs."""

    rule: str
    category: str
    start: int
    end: int
    severity: Severity


@dataclass(frozen=True)
class Verdict:
    """All findings, their combined score in [0, 1], and whether that makes the text an injection."""

    findings: tuple[InjectionFinding, ...]
    score: float
    is_injection: bool
    decoded_tags: str = ""  # ASCII smuggled in Unicode tag characters, if any

    def to_dict(self) -> dict[str, object]:
        return {
            "is_injection": self.is_injection,
            "score": round(self.score, 3),
            "findings": [
                {"rule": f.rule, "category": f.category, "severity": f.severity, "start": f.start, "end": f.end}
                for f in self.findings
            ],
            **({"decoded_tags": self.decoded_tags} if self.decoded_tags else {}),
        }


class Classifier(Protocol):
    """Anything that turns text into findings, e.g. a wrapper around a local model."""

    def __call__(self, text: str, /) -> Iterable[InjectionFinding]: ...


_MD_LINK = re.compile(r"(?P<bang>!?)\[[^\]\n]{0,256}\]\(\s*<?(?P<url>https?://[^\s)>'\"]{1,2048})")
_HTML_SRC = re.compile(
    r"<(?P<tag>img|image|iframe|script|link|audio|video|source|a)\b[^>]{0,512}?\b(?:src|href|srcset|data)\s*=\s*"
    r"[\"']?(?P<url>https?://[^\s\"'>]{1,2048})",
    re.IGNORECASE,
)
_URL_PLACEHOLDER = re.compile(
    r"\{[^}]{0,64}\}|\$\{|\$[A-Z_]{2,}|%7B|<[A-Za-z_ ]{2,40}>|%3C|\[[A-Z_ ]{2,40}\]|%5B[A-Z_]|%s\b|__[A-Z_]+__"
)
_LONG_VALUE = re.compile(r"=(?:[A-Za-z0-9+/_-]|%[0-9A-Fa-f]{2}){40,}")
_EXFIL_PARAM = re.compile(
    r"[?&](?:data|d|q|query|secret|token|key|conversation|chat|history|context|prompt|memory|password|pw|email|ssn"
    r"|info|payload|p|c|content|msg|message|leak|exfil|text|summary|user)=",
    re.IGNORECASE,
)


class InjectionDetector:
    """Scans text for prompt injection: rules, then the learned model (the one shipped with
    ringfence unless another is given; ``model=None`` for rules only); ``extra_classifiers`` add
    findings of their own.

    ``model_alone`` says whether the model's finding may make an injection on its own (high when the
    model is sure): yes for tool arguments and results, where instructions to the model are out of
    place; no for text written to instruct the model, such as tool descriptions (the lint's RF001),
    where the finding stays medium and needs a rule's finding beside it."""

    def __init__(
        self,
        extra_classifiers: Iterable[Classifier | Callable[[str], Iterable[InjectionFinding]]] = (),
        model: InjectionModel | Literal["packaged"] | None = "packaged",
        *,
        model_alone: bool = True,
    ):
        self.extra_classifiers = tuple(extra_classifiers)
        self.model: InjectionModel | None = packaged_model() if isinstance(model, str) else model
        self.model_alone = model_alone

    def scan(self, text: str) -> Verdict:
        findings: list[InjectionFinding] = []
        folded = fold(text)
        findings.extend(_run_rules(folded, RULES))
        runs = hidden_runs(text)
        findings.extend(_hidden_findings(text, runs))
        decoded = decode_tag_smuggling(text) if any(run.kind == "tag" for run in runs) else ""
        copies = hidden_copies(text, folded, runs, decoded)
        for via, start, end, hidden in copies:
            findings.extend(_nested(hidden, via, start, end))
        findings.extend(_link_findings(text))
        for classifier in self.extra_classifiers:
            findings.extend(classifier(text))
        findings = _dedupe(findings)
        score = _score(findings)
        if score < INJECTION_THRESHOLD and self.model is not None:
            # A lean counts only where it decides: beside a rule's medium finding, and never where the
            # model is addressed by design (there its finding is at most medium).
            lean = self.model_alone and _score_with(score, "low") >= INJECTION_THRESHOLD
            found = _model_verdict(self.model, folded, copies, lean=lean)
            if found is not None:
                severity: Severity = found.severity if self.model_alone else "medium"
                finding = InjectionFinding("model", "model", found.start, found.end, severity)
                findings = _dedupe([*findings, finding])
                score = _score(findings)
        return Verdict(tuple(findings), score, score >= INJECTION_THRESHOLD, decoded)


def hidden_copies(text: str, folded: Folded, runs: list[HiddenRun], smuggled: str) -> list[HiddenCopy]:
    """What ``text`` hides, to be read again by the phrase rules and the model: the ASCII ``smuggled``
    in its tag characters (``runs``), and its encoded or scrambled copies (``decoders``), each folded
    and with the span it hides in, where a finding in it is placed."""
    copies: list[HiddenCopy] = []
    if smuggled:
        start = min(run.start for run in runs if run.kind == "tag")
        end = max(run.end for run in runs if run.kind == "tag")
        copies.append(("tag_smuggling", start, end, fold(smuggled)))
    copies.extend((via, start, end, fold(copy)) for via, start, end, copy in decoded_copies(text, folded.text))
    return copies


def _model_verdict(model: InjectionModel, folded: Folded, copies: list[HiddenCopy], *,
                   lean: bool) -> ModelVerdict | None:
    """The model's verdict (``lean``: a lean too) on the text or on a copy it hides, whichever scores
    higher (letter-spacing, an encoding or ROT13 would otherwise hide the words it weighs); a copy's is
    placed on its span."""
    best = model.verdict(folded, lean=lean)
    for _via, start, end, hidden in copies:
        found = model.verdict(hidden, lean=lean)
        if found is not None and (best is None or found.logit > best.logit):
            best = dataclasses.replace(found, start=start, end=end)
    return best


def _run_rules(folded: Folded, rules: Iterable[InjectionRule]) -> Iterator[InjectionFinding]:
    text = folded.text
    if len(text) <= WHOLE_TEXT_BELOW:
        # Short text: one pass says which keywords occur; rules without one are skipped.
        present = _keywords_present(text)
        hits: dict[str, list[int]] | None = None
    else:
        hits = _keyword_hits(text)
        present = set(hits)
    if not present:
        return  # every rule needs one of its keywords (the usual case for a short argument)
    for rule in rules:
        if present.isdisjoint(rule.keywords):
            continue
        if rule.anchored:
            matches = _anchored_matches(text, rule, present, hits)
        else:
            windows = [(0, len(text))] if hits is None else _windows(text, rule, hits)
            matches = (match for start, end in windows for match in rule.pattern.finditer(text, start, end))
        for match in matches:
            span_start, span_end = folded.span(match.start(), match.end())
            yield InjectionFinding(rule.name, rule.category, span_start, span_end, rule.severity)


def _anchored_matches(
    text: str, rule: InjectionRule, present: set[str], hits: dict[str, list[int]] | None
) -> Iterator[re.Match[str]]:
    positions: set[int] = set()
    for keyword in rule.keywords:
        if keyword not in present:
            continue
        if hits is not None:
            positions.update(hits[keyword])
        else:
            pos = text.find(keyword)
            while pos != -1:
                positions.add(pos)
                pos = text.find(keyword, pos + 1)
    reached = 0
    for pos in sorted(positions):
        if pos >= reached:
            match = rule.pattern.match(text, pos)
            if match is not None:
                reached = match.end()
                yield match


def _keywords_present(text: str) -> set[str]:
    """Keywords that occur in ``text``, from one non-overlapping pass (a keyword that starts inside
    another one's occurrence, rather than at its start, can be missed; at the same start, the
    shorter ones are implied by the longest)."""
    present: set[str] = set()
    for longest in set((_ASCII_KEYWORD_FIND if text.isascii() else _KEYWORD_FIND).findall(text)):
        if longest:
            present.update(_prefixes(longest))
    return present


def _prefixes(longest: str) -> tuple[str, ...]:
    prefixes = _PREFIXES.get(longest)
    if prefixes is None:
        prefixes = _PREFIXES[longest] = tuple(k for k in _KEYWORDS if longest.startswith(k))
    return prefixes


def _keyword_trie(words: Iterable[str]) -> str:
    """A regular expression matching any of ``words``, factored by common prefixes (longest first)."""
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def render(node: dict[str, dict]) -> str:
        branches = [re.escape(char) + render(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return render(trie)


_KEYWORDS = sorted({keyword for rule in RULES for keyword in rule.keywords})
# At every position, the longest keyword that starts there; keywords that are its prefixes start there too.
_KEYWORD_TRIE = _keyword_trie(_KEYWORDS)
_KEYWORD_SCAN = re.compile("(?=(" + _KEYWORD_TRIE + "))")
_KEYWORD_FIND = re.compile(_KEYWORD_TRIE)
# ASCII text cannot hold the Cyrillic, Chinese, Japanese or Korean keywords: a smaller expression
# finds the rest, so those rules cost English text nothing.
_ASCII_KEYWORD_TRIE = _keyword_trie(k for k in _KEYWORDS if k.isascii())
_ASCII_KEYWORD_SCAN = re.compile("(?=(" + _ASCII_KEYWORD_TRIE + "))")
_ASCII_KEYWORD_FIND = re.compile(_ASCII_KEYWORD_TRIE)
_PREFIXES: dict[str, tuple[str, ...]] = {}


def _keyword_hits(text: str) -> dict[str, list[int]]:
    """Where each keyword occurs, from one pass over the text."""
    hits: dict[str, list[int]] = {}
    for match in (_ASCII_KEYWORD_SCAN if text.isascii() else _KEYWORD_SCAN).finditer(text):
        longest = match.group(1)
        if not longest:
            continue
        for keyword in _prefixes(longest):
            hits.setdefault(keyword, []).append(match.start())
    return hits


def _windows(text: str, rule: InjectionRule, hits: dict[str, list[int]]) -> list[tuple[int, int]]:
    """Disjoint spans around every keyword occurrence, wide enough to hold any match of the rule.

    Searching only there is what keeps a scan at microseconds per kilobyte: the keywords are found
    in one pass, and a rule's regular expression never walks text that cannot match it.
    """
    windows: list[tuple[int, int]] = []
    length = len(text)
    for keyword in rule.keywords:
        positions = hits.get(keyword)
        if not positions:
            continue
        if len(positions) > MAX_KEYWORD_HITS:
            return [(0, length)]
        width = len(keyword) + WINDOW_AFTER_KEYWORD
        windows.extend((max(0, pos - rule.back), min(length, pos + width)) for pos in positions)
    if len(windows) <= 1:
        return windows
    windows.sort()
    merged = [windows[0]]
    for start, end in windows[1:]:
        if start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _nested(folded: Folded, via: str, start: int, end: int) -> Iterator[InjectionFinding]:
    """Findings in a decoded payload, all placed on the encoded span they came from."""
    for finding in _run_rules(folded, (rule for rule in RULES if rule.phrase)):
        yield InjectionFinding(f"{via}:{finding.rule}", "obfuscation", start, end, finding.severity)


def _hidden_findings(text: str, runs: list[HiddenRun]) -> Iterator[InjectionFinding]:
    has_rtl = any("\u0590" <= c <= "\u08ff" for c in text) if any(run.kind == "bidi" for run in runs) else False
    for run in runs:
        if run.kind == "tag":
            # An emoji flag tag sequence (U+1F3F4 followed by tags) is legitimate.
            if run.start > 0 and text[run.start - 1] == "\U0001f3f4":
                continue
            yield InjectionFinding("unicode_tag_characters", "hidden_text", run.start, run.end, "high")
        elif run.kind == "zero_width":
            if run.start == 0 and text[0] == "\ufeff":
                continue  # a byte order mark
            before = text[run.start - 1] if run.start else ""
            after = text[run.end] if run.end < len(text) else ""
            if before.isalpha() and after.isalpha() and before.isascii() and after.isascii():
                yield InjectionFinding("zero_width_in_word", "hidden_text", run.start, run.end, "medium")
            elif run.end - run.start >= 3:
                yield InjectionFinding("zero_width_run", "hidden_text", run.start, run.end, "medium")
        elif run.kind == "bidi":
            severity: Severity = "low" if has_rtl else "medium"
            yield InjectionFinding("bidi_control", "hidden_text", run.start, run.end, severity)
        elif run.kind == "variation" and run.end - run.start >= 4:
            yield InjectionFinding("variation_selector_run", "hidden_text", run.start, run.end, "high")


def _link_findings(text: str) -> Iterator[InjectionFinding]:
    if "://" not in text:
        return
    for match in _MD_LINK.finditer(text):
        yield from _judge_url(match, image=bool(match.group("bang")))
    if "<" in text:
        for match in _HTML_SRC.finditer(text):
            yield from _judge_url(match, image=match.group("tag").lower() != "a")


def _judge_url(match: re.Match[str], image: bool) -> Iterator[InjectionFinding]:
    url = match.group("url")
    if "?" not in url and "#" not in url and not _URL_PLACEHOLDER.search(url):
        return
    start, end = match.span()
    kind = "image" if image else "link"
    if _URL_PLACEHOLDER.search(url):
        yield InjectionFinding(f"{kind}_url_placeholder", "exfiltration", start, end, "high" if image else "medium")
    elif _LONG_VALUE.search(url):
        yield InjectionFinding(f"{kind}_url_long_value", "exfiltration", start, end, "medium")
    elif image and _EXFIL_PARAM.search(url):
        yield InjectionFinding("image_url_data_parameter", "exfiltration", start, end, "low")


def _dedupe(findings: list[InjectionFinding]) -> list[InjectionFinding]:
    seen: set[tuple[str, int, int]] = set()
    unique = []
    for finding in sorted(findings, key=lambda f: (f.start, f.end, f.rule)):
        key = (finding.rule, finding.start, finding.end)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique


def _score_with(score: float, severity: Severity) -> float:
    """``score`` once a finding of ``severity`` from a rule not yet counted joins it (noisy-or)."""
    return 1.0 - (1.0 - score) * (1.0 - SEVERITY_WEIGHT[severity])


def _score(findings: Iterable[InjectionFinding]) -> float:
    """Noisy-or over distinct rules, each counted once at its highest severity."""
    strongest: dict[str, float] = {}
    for finding in findings:
        rule = finding.rule.rsplit(":", 1)[-1]
        strongest[rule] = max(strongest.get(rule, 0.0), SEVERITY_WEIGHT.get(finding.severity, 0.0))
    miss = 1.0
    for weight in strongest.values():
        miss *= 1.0 - weight
    return 1.0 - miss
