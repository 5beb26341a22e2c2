"""ringfence's redactor against Presidio's pattern recognizers: throughput and per-type P/R/F1.

Both tools see the same seeded corpus of log-like and chat-like lines with e-mail addresses,
phone numbers (US, UK, DE, FR), card numbers, IBANs, US SSNs and IP addresses embedded, and
look-alikes that must not be flagged (Luhn-failing numbers, IBANs with a bad checksum, order
numbers, timestamps, versions, hashes, UUIDs). Presidio runs without any spaCy model download:
a subclassed SpacyNlpEngine that returns ``spacy.blank("en")`` (tokens for context words, no
NER), and the predefined recognizers minus SpacyRecognizer; it is also run with its NoOpNlpEngine.

    python3.11 -m venv bench/.venv-presidio
    bench/.venv-presidio/bin/pip install presidio-analyzer     # brings spaCy, phonenumbers
    bench/.venv-presidio/bin/python bench/redaction_vs_presidio.py

A span counts as found when a predicted span of the same type overlaps it (each gold span is
matched once); a predicted span of a compared type that overlaps no gold span of that type is a
false positive. Types outside the six (ringfence's SECRET, DOB...; Presidio's DATE_TIME, URL...)
are not scored.
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from _local_import import use_local_ringfence

use_local_ringfence()

from ringfence.detect.checksums import luhn_valid  # noqa: E402
from ringfence.detect.redactor import Redactor  # noqa: E402

SEED = 7
COMPARED = ("EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "US_SSN", "IP_ADDRESS")
RINGFENCE_TYPES = {"EMAIL": "EMAIL", "PHONE": "PHONE", "CARD": "CREDIT_CARD", "IBAN": "IBAN", "SSN": "US_SSN",
                   "IP": "IP_ADDRESS"}  # fmt: skip
PRESIDIO_TYPES = {"EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "CREDIT_CARD": "CREDIT_CARD",
                  "IBAN_CODE": "IBAN", "US_SSN": "US_SSN", "IP_ADDRESS": "IP_ADDRESS"}  # fmt: skip

Span = tuple[str, int, int]


@dataclass
class Line:
    text: str
    spans: list[Span]


# --- value generators ---------------------------------------------------------------------------

FIRST = ["anna", "ben", "chloe", "david", "emma", "farid", "greta", "hugo", "ines", "jonas", "kira", "liam", "mei",
         "noah", "olga", "pablo", "quinn", "rosa", "sven", "tara"]  # fmt: skip
LAST = ["meyer", "smith", "dubois", "garcia", "rossi", "novak", "kowalski", "jensen", "okafor", "tanaka", "silva"]
DOMAINS = ["example.com", "mail.example.org", "example.co.uk", "corp.example.net", "example.de", "example.fr"]


def email(rng: random.Random) -> str:
    sep = rng.choice([".", "_", "", "-"])
    local = f"{rng.choice(FIRST)}{sep}{rng.choice(LAST)}{rng.choice(['', str(rng.randint(1, 99))])}"
    if rng.random() < 0.1:
        local += "+" + rng.choice(["news", "billing", "test"])
    return f"{local}@{rng.choice(DOMAINS)}"


US_AREAS = ["212", "312", "415", "617", "646", "702", "713", "206", "303", "404"]


def phone(rng: random.Random) -> str:
    kind = rng.choice(["us", "us", "uk", "de", "fr"])
    if kind == "us":
        area, exchange, line = rng.choice(US_AREAS), str(rng.randint(201, 989)), f"{rng.randint(0, 9999):04d}"
        return rng.choice([
            f"({area}) {exchange}-{line}", f"{area}-{exchange}-{line}", f"{area}.{exchange}.{line}",
            f"+1 {area} {exchange} {line}", f"+1-{area}-{exchange}-{line}", f"+1 ({area}) {exchange}-{line}",
        ])  # fmt: skip
    if kind == "uk":
        if rng.random() < 0.5:  # Ofcom drama range 020 7946 0000-0999
            rest = f"{rng.randint(0, 999):03d}"
            return rng.choice([f"020 7946 0{rest}", f"+44 20 7946 0{rest}", f"+44 (0)20 7946 0{rest}"])
        mobile = f"74{rng.randint(10, 99)} {rng.randint(100000, 999999)}"
        return rng.choice([f"0{mobile}", f"+44 {mobile}"])
    if kind == "de":
        if rng.random() < 0.5:
            subscriber = str(rng.randint(2000000, 99999999))
            return rng.choice([f"030 {subscriber}", f"+49 30 {subscriber}", f"030/{subscriber}"])
        mobile = f"{rng.randint(10000000, 99999999)}"
        return rng.choice([f"0151 {mobile}", f"+49 151 {mobile}", f"0171 {mobile[:7]}"])
    lead = rng.choice(["1 4", "4 5", "7 6", "1 2"])  # Paris, south-east, mobile 07 6x, Paris
    pairs = f"{lead[0]} {lead[2]}{rng.randint(0, 9)} " + " ".join(f"{rng.randint(0, 99):02d}" for _ in range(3))
    return rng.choice([f"0{pairs}", f"+33 {pairs}", f"0{pairs.replace(' ', '.')}"])


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for check in string.digits:
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable")


def card_digits(rng: random.Random) -> str:
    brand = rng.choice(["visa", "visa", "mc", "amex", "discover"])
    if brand == "visa":
        return luhn_complete("4", 16, rng)
    if brand == "mc":
        return luhn_complete(str(rng.randint(51, 55)), 16, rng)
    if brand == "amex":
        return luhn_complete(rng.choice(["34", "37"]), 15, rng)
    return luhn_complete("6011", 16, rng)


def card(rng: random.Random) -> str:
    digits = card_digits(rng)
    style = rng.choice(["plain", "space", "dash"])
    if style == "plain":
        return digits
    sep = " " if style == "space" else "-"
    if len(digits) == 15:
        return sep.join([digits[:4], digits[4:10], digits[10:]])
    return sep.join(digits[i : i + 4] for i in range(0, 16, 4))


IBAN_FORMATS = {"DE": "8n10n", "GB": "4a6n8n", "FR": "5n5n11c2n", "NL": "4a10n", "ES": "4n4n1n1n10n", "IT": "1a5n5n12c"}


def iban_value(rng: random.Random, valid: bool = True) -> str:
    country = rng.choice(sorted(IBAN_FORMATS))
    bban = ""
    for count, kind in _format_parts(IBAN_FORMATS[country]):
        alphabet = {"n": string.digits, "a": string.ascii_uppercase, "c": string.ascii_uppercase + string.digits}[kind]
        bban += "".join(rng.choice(alphabet) for _ in range(count))
    numeric = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    check = 98 - numeric % 97
    if not valid:
        check = (check + rng.randint(1, 90)) % 97 + 2
    compact = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        return compact
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def _format_parts(spec: str) -> list[tuple[int, str]]:
    parts, number = [], ""
    for char in spec:
        if char.isdigit():
            number += char
        else:
            parts.append((int(number), char))
            number = ""
    return parts


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    value = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
    sep = rng.choice(["-", "-", " "])
    return f"{value[:3]}{sep}{value[3:5]}{sep}{value[5:]}"


def ip(rng: random.Random) -> str:
    if rng.random() < 0.8:
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    if rng.random() < 0.5:
        return "2001:db8::" + ":".join(groups[:3])
    return ":".join(groups)


GENERATORS: dict[str, Callable[[random.Random], str]] = {
    "EMAIL": email, "PHONE": phone, "CREDIT_CARD": card, "IBAN": iban_value, "US_SSN": ssn, "IP_ADDRESS": ip,
}  # fmt: skip


def decoy(rng: random.Random) -> str:
    """Look-alikes that neither tool should flag."""
    kind = rng.randrange(12)
    if kind == 0:
        digits = card_digits(rng)
        bad = digits[:-1] + str((int(digits[-1]) + rng.randint(1, 9)) % 10)
        return f"ref {bad}"
    if kind == 1:
        return f"account {iban_value(rng, valid=False)}"
    if kind == 2:
        return f"order #{rng.randint(10**7, 10**9)}"
    if kind == 3:
        month, day, hour, minute = rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59)
        return f"at 2024-{month:02d}-{day:02d} {hour:02d}:{minute:02d}"
    if kind == 4:
        return f"version {rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 40)}"
    if kind == 5:
        return f"sha {''.join(rng.choice('0123456789abcdef') for _ in range(40))}"
    if kind == 6:
        hexes = "".join(rng.choice("0123456789abcdef") for _ in range(32))
        return f"trace {hexes[:8]}-{hexes[8:12]}-{hexes[12:16]}-{hexes[16:20]}-{hexes[20:]}"
    if kind == 7:
        return f"took {rng.randint(1, 9999)} ms"
    if kind == 8:
        return f"ticket {rng.randint(100, 999)}-{rng.randint(100, 999)}-{rng.randint(100, 999)}"
    if kind == 9:
        return f"amount ${rng.randint(1, 99)},{rng.randint(100, 999)}.{rng.randint(0, 99):02d}"
    if kind == 10:
        return f"host 999.{rng.randint(1, 9)}.{rng.randint(1, 9)}.{rng.randint(1, 9)}"
    return f"id={rng.randint(10**11, 10**13)}"


LOG_TEMPLATES = [
    "{ts} INFO  [req-{req}] user={EMAIL} login ok from {IP_ADDRESS} {decoy}",
    "{ts} WARN  [req-{req}] payment declined card={CREDIT_CARD} {decoy}",
    "{ts} DEBUG [req-{req}] callback phone={PHONE} status=queued {decoy}",
    "{ts} INFO  [req-{req}] payout to {IBAN} scheduled {decoy}",
    "{ts} ERROR [req-{req}] kyc check failed ssn={US_SSN} {decoy}",
    "{ts} INFO  [req-{req}] {decoy} client={IP_ADDRESS} agent=curl/8.5",
    "{ts} INFO  [req-{req}] {decoy} healthy",
    '{{"ts":"{ts}","level":"info","email":"{EMAIL}","phone":"{PHONE}","msg":"profile updated {decoy}"}}',
]
CHAT_TEMPLATES = [
    "Hi, this is {name}. You can reach me at {EMAIL} or call {PHONE}.",
    "Please refund to my card {CREDIT_CARD}, the {decoy} was wrong.",
    "My IBAN is {IBAN}, please use it for the transfer.",
    "For the tax form my SSN is {US_SSN}.",
    "The VPN shows {IP_ADDRESS} but I'm at home; see {decoy}.",
    "Thanks! I'll check {decoy} and get back to you tomorrow.",
    "New number: {PHONE}. Old one is gone. Email stays {EMAIL}.",
    "Customer wrote: card {CREDIT_CARD}, phone {PHONE}, {decoy}.",
]


def corpus(lines: int, seed: int = SEED) -> list[Line]:
    rng = random.Random(seed)
    result = []
    for _ in range(lines):
        template = rng.choice(LOG_TEMPLATES if rng.random() < 0.5 else CHAT_TEMPLATES)
        text, spans, pos = "", [], 0
        for literal, field_name, _, _ in string.Formatter().parse(template):
            text += literal
            pos += len(literal)
            if field_name is None:
                continue
            if field_name in GENERATORS:
                value = GENERATORS[field_name](rng)
                spans.append((field_name, pos, pos + len(value)))
            elif field_name == "ts":
                day, hour, minute, milli = (
                    rng.randint(1, 28),
                    rng.randint(0, 23),
                    rng.randint(0, 59),
                    rng.randint(0, 999),
                )
                value = f"2024-05-{day:02d}T{hour:02d}:{minute:02d}:00.{milli:03d}Z"
            elif field_name == "req":
                value = "".join(rng.choice("0123456789abcdef") for _ in range(8))
            elif field_name == "name":
                value = f"{rng.choice(FIRST).title()} {rng.choice(LAST).title()}"
            else:
                value = decoy(rng)
            text += value
            pos += len(value)
        result.append(Line(text, spans))
    return result


# --- the two tools ------------------------------------------------------------------------------


def ringfence_finder(all_types: bool) -> Callable[[str], list[Span]]:
    redactor = Redactor() if all_types else Redactor(types=RINGFENCE_TYPES)

    def find(text: str) -> list[Span]:
        return [(RINGFENCE_TYPES.get(f.type, f.type), f.start, f.end) for f in redactor.find(text)]

    return find


def presidio_finder(engine: str, threshold: float) -> Callable[[str], list[Span]]:
    import spacy
    import tldextract

    # Presidio's e-mail and URL recognizers call tldextract, which would fetch the public suffix
    # list from the network; use the snapshot bundled with tldextract instead (no network at run time).
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine, SpacyNlpEngine

    class BlankSpacyNlpEngine(SpacyNlpEngine):
        """Tokens and lemmas for context words, no NER, nothing downloaded."""

        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}

    if engine == "blank-spacy":
        nlp_engine = BlankSpacyNlpEngine(models=[{"lang_code": "en", "model_name": "blank"}])
    else:
        nlp_engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    nlp_engine.load()
    registry = RecognizerRegistry()
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp_engine)
    registry.remove_recognizer("SpacyRecognizer")
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])
    entities = list(PRESIDIO_TYPES)

    def find(text: str) -> list[Span]:
        results = analyzer.analyze(text=text, language="en", entities=entities, score_threshold=threshold)
        return [(PRESIDIO_TYPES[r.entity_type], r.start, r.end) for r in results]

    return find


# --- scoring ------------------------------------------------------------------------------------


def score(lines: list[Line], predictions: list[list[Span]]) -> dict[str, Counter[str]]:
    tally: dict[str, Counter[str]] = {t: Counter() for t in COMPARED}
    for line, predicted in zip(lines, predictions, strict=True):
        predicted = [p for p in predicted if p[0] in COMPARED]
        used: set[int] = set()
        for gold_type, gold_start, gold_end in line.spans:
            match = next(
                (
                    i
                    for i, (t, s, e) in enumerate(predicted)
                    if i not in used and t == gold_type and s < gold_end and gold_start < e
                ),
                None,
            )
            if match is None:
                tally[gold_type]["fn"] += 1
            else:
                used.add(match)
                tally[gold_type]["tp"] += 1
        for i, (t, s, e) in enumerate(predicted):
            if i not in used and not any(t == g[0] and s < g[2] and g[1] < e for g in line.spans):
                tally[t]["fp"] += 1
    return tally


def prf(counts: Counter[str]) -> tuple[float, float, float]:
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def timed_interleaved(
    tools: list[tuple[str, Callable[[str], list[Span]]]], texts: list[str], runs: int
) -> dict[str, tuple[float, list[list[Span]]]]:
    """Median CPU seconds per tool over ``runs`` passes; the tools take turns so that load on the
    machine affects them alike."""
    timings: dict[str, list[float]] = {name: [] for name, _ in tools}
    predictions: dict[str, list[list[Span]]] = {}
    for _ in range(runs):
        for name, find in tools:
            started = time.process_time()
            predictions[name] = [find(text) for text in texts]
            timings[name].append(time.process_time() - started)
    return {name: (statistics.median(timings[name]), predictions[name]) for name, _ in tools}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    lines = corpus(args.lines)
    texts = [line.text for line in lines]
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    gold = Counter(t for line in lines for t, _, _ in line.spans)
    print(
        f"Corpus: {len(lines)} lines, {megabytes * 1000:.0f} KB, seed {SEED}; gold spans: {dict(sorted(gold.items()))}"
    )
    print()

    tools: list[tuple[str, Callable[[str], list[Span]]]] = [
        ("ringfence (6 types)", ringfence_finder(all_types=False)),
        ("ringfence (all 13 types)", ringfence_finder(all_types=True)),
    ]
    try:
        tools += [
            ("Presidio, blank spaCy, threshold 0", presidio_finder("blank-spacy", 0.0)),
            ("Presidio, blank spaCy, threshold 0.4", presidio_finder("blank-spacy", 0.4)),
            ("Presidio, NoOp NLP engine, threshold 0.4", presidio_finder("no-op", 0.4)),
        ]
    except ImportError as exc:
        print(f"(Presidio not importable here: {exc}; see the module docstring)\n")

    for _, find in tools:
        find(texts[0])  # warm up (Presidio builds its regexes lazily)
    timed = timed_interleaved(tools, texts, args.runs)
    results = [(name, timed[name][0], score(lines, timed[name][1])) for name, _ in tools]

    base = next((s for n, s, _ in results if n.startswith("Presidio, blank spaCy, threshold 0.4")), None)
    print("| tool | MB/s | lines/s | µs/line | speed-up vs Presidio (blank spaCy, 0.4) |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds, _ in results:
        ratio = f"{base / seconds:.0f}x" if base else "-"
        print(
            f"| {name} | {megabytes / seconds:.2f} | {len(texts) / seconds:,.0f} | {seconds * 1e6 / len(texts):.1f} "
            f"| {ratio} |"
        )
    print(f"\n(CPU time of this process, median of {args.runs} interleaved runs over the whole corpus, one core)\n")

    header = " | ".join(f"{t} P / R / F1" for t in COMPARED)
    print(f"| tool | {header} | micro F1 |")
    print("|---|" + "---|" * (len(COMPARED) + 1))
    for name, _, tally in results:
        cells = []
        total: Counter[str] = Counter()
        for entity in COMPARED:
            p, r, f = prf(tally[entity])
            total.update(tally[entity])
            cells.append(f"{p:.3f} / {r:.3f} / {f:.3f}")
        print(f"| {name} | {' | '.join(cells)} | {prf(total)[2]:.3f} |")


if __name__ == "__main__":
    main()
