"""Write the standard-library texts of two benign sets to bench/data/stdlib_texts.jsonl.

``injection_eval.py``'s python-docs set (docstring paragraphs of the standard library) and part of
its everyday set (the e-mail test messages and the CJK codec samples) come from CPython's own files,
which differ from one Python release to the next. Read from the running Python, they made the
injection model's training, and so its bytes, follow the Python installation. They are pinned
instead: this script copies them from the running Python once, and the benchmark and the trainer
read only the copy. The shipped copy was made with Python 3.11.7 (CPython, PSF-2.0):

    bench/.venv-corpora/bin/python bench/pin_stdlib_texts.py

One JSON object a line: first ``{"python": version}``, then ``{"kind": …, "text": …}`` with kind
``docstring`` (every paragraph of 80 characters or more, sorted), ``email`` or ``cjk`` (each file in
name order).
"""

from __future__ import annotations

import json
import platform
import sysconfig
from pathlib import Path

from injection_eval import STDLIB_TEXTS, docstring_paragraphs

SKIPPED = {"test", "tests", "idlelib", "lib2to3", "site-packages", "turtledemo"}


def stdlib_texts() -> list[dict[str, str]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    paths = [path for path in sorted(stdlib.rglob("*.py")) if not SKIPPED.intersection(path.parts)]
    records = [{"kind": "docstring", "text": text} for text in sorted(docstring_paragraphs(paths))]
    tests = stdlib / "test"
    for kind, pattern in (("email", "test_email/data/msg_*.txt"), ("cjk", "cjkencodings/*-utf8.txt")):
        records += [{"kind": kind, "text": path.read_text(encoding="utf-8", errors="replace")}
                    for path in sorted(tests.glob(pattern))]
    return records


def main() -> None:
    STDLIB_TEXTS.parent.mkdir(exist_ok=True)
    lines = [json.dumps({"python": platform.python_version()})]
    lines += [json.dumps(record, ensure_ascii=False) for record in stdlib_texts()]
    STDLIB_TEXTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines) - 1} texts of Python {platform.python_version()} -> {STDLIB_TEXTS}")


if __name__ == "__main__":
    main()
