"""`bench/run --quick --no-scaling`: the benchmark harness runs end to end and writes a well-formed table and plot.

No timing is asserted (machines are noisy); this checks that both servers answered every call
successfully (the load generator stops on any refusal or error) and that the outputs the README
takes are complete. The PostgreSQL/Redis part (1 vs 2 processes) is left to `bench/run` itself:
it starts three more servers, too slow for a smoke test.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.support.serve import REPO, server_env

EXPECTED_CASES = {("search_contacts", 1), ("add_contact", 1), ("search_contacts", 32), ("add_contact", 32)}
EXPECTED_GUARDS = {"token verification", "argument validation", "scope check", "output guard, 1 contact",
                   "output guard, 20 contacts", "rate limit, in-process", "audit write, SQLite"}
NUMBER = re.compile(r"^[+-]?[\d,]+(\.\d+)?%?$")


def test_quick_benchmark_writes_a_complete_table_and_plot(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "tool_calls.py"), "--quick", "--no-scaling",
                           "--out", str(tmp_path)],
                          cwd=REPO, env=server_env(), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]

    results = json.loads((tmp_path / "tool_calls.json").read_text())
    assert {(row["tool"], row["clients"]) for row in results["comparison"]} == EXPECTED_CASES
    for row in results["comparison"]:
        for server in ("bare", "ringfence"):
            measured = row[server]
            assert measured["median_ms"] > 0 and measured["p99_ms"] >= measured["median_ms"]
            assert measured["calls_per_s"] > 0 and measured["server_cpu_ms_per_call"] >= 0
    assert EXPECTED_GUARDS <= {cost["name"] for cost in results["guards"]}
    assert all(cost["median_us"] > 0 for cost in results["guards"])

    table = (tmp_path / "tool_calls.md").read_text()
    comparison = [line for line in table.splitlines() if line.startswith(("| search_contacts", "| add_contact"))]
    assert len(comparison) == 4
    for line in comparison:
        cells = [cell.strip().strip("*") for cell in line.strip("|").split("|")]
        assert len(cells) == 11 and all(NUMBER.match(cell) for cell in cells[1:]), line
    assert (tmp_path / "tool_calls.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def step_rows(output: str) -> dict[str, list[str]]:
    """The step table's rows of ``bench/calls/call_steps.py``: label -> the other cells."""
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in output.splitlines()
            if line.startswith("| ")]
    return {cells[0]: cells[1:] for cells in rows if cells[0] not in ("step", "---")}


def run_call_steps(*arguments: str) -> str:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "calls" / "call_steps.py"), *arguments],
                          cwd=REPO, env=server_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_call_steps_times_every_step_of_a_write_inside_real_calls() -> None:
    from bench.calls.call_steps import PROBES

    rows = step_rows(run_call_steps("--tool", "add_contact", "--calls", "5", "--rounds", "1"))
    expected = {probe.label for probe in PROBES} - {"wrapper: owner scope of the app's SQL (Owned)"}  # no SELECT
    assert expected <= set(rows), expected - set(rows)
    for label in expected:
        times_per_call, in_call, _alone = rows[label]
        assert float(times_per_call) >= 1 and float(in_call) > 0, (label, rows[label])
    assert float(rows["event: audit record appended and committed (SQLite)"][0]) == 2  # tool.started, tool.call


def test_call_steps_served_times_the_http_steps_too() -> None:
    from bench.calls.call_steps import HTTP_PROBES, PROBES

    output = run_call_steps("--tool", "search_contacts", "--served", "20", "--warm-up", "0")
    rows = step_rows(output)
    assert {probe.label for probe in (*PROBES, *HTTP_PROBES)} <= set(rows)
    assert all(float(cells[1]) > 0 for label, cells in rows.items() if not label.startswith(("the rest", "garbage")))
    assert "served by uvicorn" in output and "bare" in output


def test_sqlite_append_cache_reports_every_phase() -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "calls" / "sqlite_append_cache.py"), "--appends", "30"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 8
    assert all(float(line.strip("|").split("|")[-1]) > 0 for line in rows)
