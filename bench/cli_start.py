"""How long the ``ringfence`` command and the public imports take to start, each in a fresh process.

Wall time of the whole process (interpreter start included), median of ``--runs`` runs after one
warm-up run (which writes the byte-code caches), compared with the targets the README states.
Nothing is asserted: a target missed is printed as such and the exit status is 1, for a human or
CI job to read; the machines are shared and noisy.

    .venv/bin/python bench/cli_start.py            # 5 runs each
    .venv/bin/python bench/cli_start.py --runs 11
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RINGFENCE = [sys.executable, "-m", "ringfence"]

# (what, command, standard input, target in seconds or None)
CASES: list[tuple[str, list[str], str, float | None]] = [
    ("python -c pass (the floor)", [sys.executable, "-c", "pass"], "", None),
    ("ringfence --help", [*RINGFENCE, "--help"], "", 0.3),
    ("ringfence --version", [*RINGFENCE, "--version"], "", None),
    ("ringfence redact, one line", [*RINGFENCE, "redact"], "call me at alice@example.com\n", 0.5),
    ("from ringfence.detect import Redactor", [sys.executable, "-c", "from ringfence.detect import Redactor"], "",
     0.2),
    ("import ringfence", [sys.executable, "-c", "import ringfence"], "", None),
    ("from ringfence import App", [sys.executable, "-c", "from ringfence import App"], "", None),
    ("import ringfence.server (what serving loads: the MCP SDK...)", [sys.executable, "-c", "import ringfence.server"],
     "", None),
]


def wall_time(command: list[str], stdin: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, cwd=REPO, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-500:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    missed = 0
    print(f"| command | median of {runs} (s) | target (s) |")
    print("| --- | ---: | ---: |")
    for what, command, stdin, target in CASES:
        wall_time(command, stdin)  # warm-up: byte-code caches written, files in the page cache
        median = statistics.median(wall_time(command, stdin) for _ in range(runs))
        verdict = "" if target is None else f"≤ {target}" + ("" if median <= target else " **missed**")
        missed += target is not None and median > target
        print(f"| `{what}` | {median:.3f} | {verdict} |")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
