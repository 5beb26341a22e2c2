"""The output guard's secret scan: false positives on benign text, obfuscated secrets caught, cost.

Benign text is real text found on this machine, offline, cut into tool-result-sized chunks (about
2 KB, at line ends):

- ``docs``: the long descriptions (READMEs) of the packages installed in this virtualenv;
- ``translations``: gettext catalogues in /usr/share/locale (coreutils, git, tar, wget, bash,
  dpkg, glib...) in 16 languages: real sentences, prompts such as "Passwort:" among them;
- ``code``: the Python standard library's sources (``password = getpass()`` and friends);
- ``contacts``: the reference app's results (names, e-mail addresses, phone numbers), as JSON;
- ``blobs``: base64 data URIs of the PNG icons matplotlib ships, UUIDs, SHA-256 hex digests and
  random base64url ids: encoded data that is not a secret.

A chunk is a false positive when the guard replaces anything in it (a secret type: those are
replaced whatever the tool declares). Obfuscated secrets are generated (seeded): API keys, JWTs and
labelled passwords, each plain, letter-spaced, with soft hyphens or zero-width characters inside,
in full-width forms and base64-wrapped, and passwords after labels in 20 languages; one counts as
caught when none of its characters is left in clear.

    .venv/bin/python bench/output_guard_cost.py                        # this checkout
    PYTHONPATH=/path/to/old/checkout .venv/bin/python bench/output_guard_cost.py   # another one

Cost is CPU time of ``scrub_text`` per KB of benign text (median of 5 runs), and the median of
one call to ``guard_result`` on the reference app's one-contact result (the fast path).
"""

from __future__ import annotations

import argparse
import base64
import gettext
import hashlib
import json
import random
import statistics
import string
import sysconfig
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from mcp.server.mcpserver.tools import Tool

import ringfence
from ringfence.declaration import ToolSpec
from ringfence.guards.output import SECRET_TYPES, Scan, guard_result, scrub_text
from ringfence.loader import load_app

REPO = Path(__file__).resolve().parents[1]
SEED = 16
CHUNK = 2048
LANGUAGES = ("de", "fr", "es", "it", "pt_BR", "nl", "sv", "da", "fi", "pl", "cs", "tr", "ru", "uk", "ja", "zh_CN")
DOMAINS = ("coreutils", "git", "tar", "wget", "bash", "dpkg", "glib20", "gnupg2", "grep", "sed", "findutils")
SECRETS = frozenset(SECRET_TYPES)


# --- benign text ---------------------------------------------------------------------------------


def chunks(text: str, size: int = CHUNK) -> Iterator[str]:
    """``text`` cut at line ends into pieces of about ``size`` characters."""
    piece: list[str] = []
    length = 0
    for line in text.splitlines(keepends=True):
        piece.append(line)
        length += len(line)
        if length >= size:
            yield "".join(piece)
            piece, length = [], 0
    if piece:
        yield "".join(piece)


def docs(limit: int) -> list[str]:
    site = Path(sysconfig.get_paths()["purelib"])
    texts = []
    for metadata in sorted(site.glob("*.dist-info/METADATA")):
        body = metadata.read_text(errors="replace").partition("\n\n")[2]
        texts.extend(chunks(body))
    return texts[:limit]


def translations(limit: int) -> list[str]:
    texts = []
    for language in LANGUAGES:
        for domain in DOMAINS:
            path = Path("/usr/share/locale") / language / "LC_MESSAGES" / f"{domain}.mo"
            if not path.exists():
                continue
            with path.open("rb") as handle:
                catalog = gettext.GNUTranslations(handle)._catalog  # type: ignore[attr-defined]
            messages = sorted(str(value) for key, value in catalog.items() if key and isinstance(value, str))
            texts.extend(list(chunks("\n".join(messages)))[: limit // (len(LANGUAGES) * 4)])
    return texts[:limit]


def code(limit: int) -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for source in sorted(stdlib.glob("*.py")):
        texts.extend(chunks(source.read_text(errors="replace")))
    return random.Random(SEED).sample(texts, min(limit, len(texts)))


def contacts(limit: int) -> list[str]:
    rng = random.Random(SEED)
    first = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Tim", "Radia", "Ken"]
    last = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Berners-Lee", "Perlman"]
    texts = []
    for _ in range(limit):
        found = [
            {"id": rng.randrange(1, 10**6), "name": f"{rng.choice(first)} {rng.choice(last)}",
             "email": f"{rng.choice(first).lower()}.{rng.randrange(100)}@example.com",
             "phone": f"+44 20 7946 {rng.randrange(10000):04d}",
             "note": rng.choice(["met at the conference", "call back on Monday", "", "prefers e-mail"])}
            for _ in range(rng.randrange(1, 12))
        ]
        texts.append(json.dumps({"result": found}, indent=2))
    return texts


def blobs(limit: int) -> list[str]:
    rng = random.Random(SEED)
    images = sorted((Path(sysconfig.get_paths()["purelib"]) / "matplotlib" / "mpl-data" / "images").glob("*.png"))
    texts = []
    for index in range(limit):
        kind = index % 4
        if kind == 0 and images:
            data = base64.b64encode(images[index // 4 % len(images)].read_bytes()).decode()
            texts.append(json.dumps({"icon": f"data:image/png;base64,{data[:6000]}"}))
        elif kind == 1:
            texts.append(json.dumps({"ids": [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(20)]}))
        elif kind == 2:
            digests = [hashlib.sha256(rng.randbytes(16)).hexdigest() for _ in range(16)]
            texts.append("\n".join(f"{digest}  file-{n}.tar.gz" for n, digest in enumerate(digests)))
        else:
            ids = [base64.urlsafe_b64encode(rng.randbytes(18)).decode() for _ in range(24)]
            texts.append(json.dumps({"cursor": ids[0], "items": [{"id": i, "title": "Quarterly report"} for i in ids]}))
    return texts


CORPORA: dict[str, Callable[[int], list[str]]] = {
    "docs": docs, "translations": translations, "code": code, "contacts": contacts, "blobs": blobs,
}


# --- obfuscated secrets ----------------------------------------------------------------------------

PASSWORD_LABELS = (
    "Passwort", "Kennwort", "mot de passe", "contraseña", "senha", "wachtwoord", "lösenord", "adgangskode",
    "passord", "salasana", "hasło", "heslo", "jelszó", "şifre", "parolă", "пароль", "密码", "パスワード", "비밀번호",
    "mật khẩu",
)


def _random(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def plain_secrets(rng: random.Random) -> list[tuple[str, str]]:
    """``(secret, text around it)`` pairs; the text holds the secret once, in clear."""
    alnum = string.ascii_letters + string.digits
    key = "sk-proj-" + _random(rng, alnum, 40)
    github = "ghp_" + _random(rng, alnum, 36)
    aws = "AKIA" + _random(rng, string.ascii_uppercase + string.digits, 16)
    stripe = "sk_live_" + _random(rng, alnum, 24)
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
    jwt = f"{header}.{_random(rng, alnum, 40)}.{_random(rng, alnum + '_-', 43)}"
    password = _random(rng, alnum, 12)
    return [(key, "your key is {}"), (github, "token {} for the CI"), (aws, "aws id {}"),
            (stripe, "use {} for billing"), (jwt, "session {}"), (password, "password: {}")]


def obfuscations(secret: str, template: str) -> dict[str, str]:
    """The same secret in the forms the output guard used to let through."""
    wide = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in template.format(secret))
    return {
        "plain": template.format(secret),
        "spaced": template.format(" ".join(secret)) if "password" not in template
        else " ".join(template.format(secret)),
        "soft hyphens": template.format("\u00ad".join(secret[i:i + 3] for i in range(0, len(secret), 3))),
        "zero-width": template.format("\u200b".join(secret[i:i + 4] for i in range(0, len(secret), 4))),
        "full-width": wide,
        "base64": "attachment: " + base64.b64encode(template.format(secret).encode()).decode(),
    }


def caught(secret: str, form: str, original: str, scrubbed: str) -> bool:
    """Whether nothing of the secret is left in clear: no 6 consecutive characters of it survive
    (with the invisible characters and spaces the obfuscation added taken out, and for base64, in
    the decoded text)."""
    if form == "base64":
        encoded = original.split(": ", 1)[1]
        return encoded not in scrubbed
    if form == "full-width":
        secret = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in secret)
    left = scrubbed.replace("\u00ad", "").replace("\u200b", "")
    if form == "spaced":
        left = left.replace(" ", "")
    return not any(secret[i:i + 6] in left for i in range(len(secret) - 5))


# --- measuring -------------------------------------------------------------------------------------


def scrub(text: str) -> tuple[str, Scan]:
    scan = Scan()
    return scrub_text(text, scan, SECRETS), scan


def fast_path_us(iterations: int) -> float:
    """Median µs of guard_result on the reference app's one-contact result (micro.py's case)."""
    app = load_app(str(REPO / "bench" / "calls" / "contacts_unmetered.py"))
    add: ToolSpec = app.tools["add_contact"]
    convert = Tool.from_function(add.fn, name=add.name).fn_metadata.convert_result
    one = convert({"id": 0, "name": "Ada Lovelace 0", "email": "ada0@example.com", "phone": "+44 20 7946 0018"})
    samples = []
    for index in range(iterations + 200):
        began = time.perf_counter_ns()
        guard_result(add, one)
        if index >= 200:
            samples.append(time.perf_counter_ns() - began)
    return statistics.median(samples) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--per-corpus", type=int, default=400, help="chunks per benign corpus")
    parser.add_argument("--secrets", type=int, default=40, help="generated secrets of each kind")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    options = parser.parse_args()
    print(f"ringfence from {Path(ringfence.__file__).parent}")

    corpora = {name: make(options.per_corpus) for name, make in CORPORA.items()}
    results: dict[str, object] = {"corpora": {}}
    print("| corpus | chunks | KB | false positives | types | µs per KB |")
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    total_chunks = total_fp = 0
    total_kb = total_us = 0.0
    for name, texts in corpora.items():
        false_positives = 0
        types: set[str] = set()
        for text in texts:
            scrubbed, scan = scrub(text)
            if scrubbed != text:
                false_positives += 1
                types |= scan.redacted
        kb = sum(len(text.encode()) for text in texts) / 1024
        runs = []
        for _ in range(5):
            began = time.process_time_ns()
            for text in texts:
                scrub(text)
            runs.append((time.process_time_ns() - began) / 1000)
        us = statistics.median(runs)
        total_chunks, total_fp, total_kb, total_us = total_chunks + len(texts), total_fp + false_positives, \
            total_kb + kb, total_us + us
        results["corpora"][name] = {"chunks": len(texts), "kb": round(kb, 1), "false_positives": false_positives,
                                    "types": sorted(types), "us_per_kb": round(us / kb, 2)}
        print(f"| {name} | {len(texts)} | {kb:,.0f} | {false_positives} | {', '.join(sorted(types)) or '-'} "
              f"| {us / kb:.1f} |")
    print(f"| **all** | {total_chunks} | {total_kb:,.0f} | {total_fp} ({100 * total_fp / total_chunks:.2f} %) | "
          f"| {total_us / total_kb:.1f} |")
    results["false_positive_rate"] = total_fp / total_chunks
    results["us_per_kb"] = total_us / total_kb

    rng = random.Random(SEED)
    by_form: dict[str, list[bool]] = {}
    for _ in range(options.secrets):
        for secret, template in plain_secrets(rng):
            for form, text in obfuscations(secret, template).items():
                by_form.setdefault(form, []).append(caught(secret, form, text, scrub(text)[0]))
        password = _random(rng, string.ascii_letters + string.digits, 12)
        for label in PASSWORD_LABELS:
            text = f"{label}: {password}"
            by_form.setdefault("password labels, 20 languages", []).append(
                caught(password, "plain", text, scrub(text)[0]))
    print("\n| secret written | caught |")
    print("| --- | ---: |")
    for form, hits in by_form.items():
        print(f"| {form} | {sum(hits)} / {len(hits)} |")
    results["caught"] = {form: [sum(hits), len(hits)] for form, hits in by_form.items()}

    fast = fast_path_us(3000)
    print(f"\nguard_result, one contact (fast path): {fast:.1f} µs")
    results["fast_path_us"] = fast
    if options.json:
        options.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
