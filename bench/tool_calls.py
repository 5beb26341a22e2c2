"""ringfence against a bare ``mcp`` MCPServer: tool-call latency and throughput, and each guard's cost.

    bench/run              # the whole benchmark, a few minutes; writes bench/results/tool_calls.{md,png,json}
    bench/run --quick      # a smoke run of seconds (numbers meaningless)

In one run it starts, as separate processes on loopback,

- ``ringfence serve`` of the reference app (``examples/contacts/app.py`` with its rate-limit
  budgets raised out of reach, ``bench/calls/contacts_unmetered.py``), with the embedded
  authorization server; the access token comes through the real OAuth flow;
- the same tools on a bare ``mcp`` MCPServer (``bench/calls/bare_contacts.py``): same SQL, same
  SQLite settings, same uvicorn settings, no security layer;

then, round after round, runs the same phases against each, alternating which goes first
(ABBA...), so that noise on the machine falls on both: a read tool (``search_contacts``) and a
write tool (``add_contact``), at 1 and at 32 concurrent clients. Medians are taken across rounds.
On a machine with 2 or more cores the server under test is pinned to CPU 0 and the load
generator to CPU 1, so they do not compete. A second part serves the app from 1 and from 2
processes on PostgreSQL and Redis, and a third times each guard in-process (``bench/calls/micro.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.calls import load  # noqa: E402
from bench.calls.report import write_outputs  # noqa: E402
from bench.calls.servers import Fleet, Target, drop_postgres, fresh_postgres, pin  # noqa: E402

POSTGRES_ADMIN_URL = os.environ.get("RINGFENCE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
# Redis database 11: the processes under test use ringfence's default key prefix, so they get a
# database of their own rather than share budgets with anything else on database 0.
REDIS_URL = "redis://127.0.0.1:6379/11"
SEARCH_QUERY = "ada"


def search_arguments(_client: int, _n: int) -> dict[str, Any]:
    return {"query": SEARCH_QUERY}


def add_arguments(client: int, n: int) -> dict[str, Any]:
    return {"name": f"Bench {client}-{n}", "email": f"bench{client}.{n}@example.com", "phone": "+1 212 555 0100"}


TOOLS = {"search_contacts": search_arguments, "add_contact": add_arguments}


@dataclass
class Sizes:
    rounds: int
    calls_single: int  # calls of the one client at concurrency 1
    calls_each: int  # calls of each client at concurrency 32
    concurrency: int
    scaling_rounds: int
    micro_iterations: int


FULL = Sizes(rounds=4, calls_single=200, calls_each=15, concurrency=32, scaling_rounds=2, micro_iterations=1000)
QUICK = Sizes(rounds=1, calls_single=5, calls_each=1, concurrency=32, scaling_rounds=1, micro_iterations=30)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summarize(phase: load.Phase, cpu: float) -> dict[str, float]:
    millis = [ns / 1e6 for ns in phase.latencies_ns]
    return {"median_ms": statistics.median(millis), "p99_ms": percentile(millis, 0.99),
            "calls_per_s": phase.throughput, "server_cpu_ms_per_call": 1000 * cpu / phase.calls}


async def measured_phase(target: Target, tool: str, clients: int, calls: int, kind: str = "raw") -> dict[str, float]:
    token = target.token()  # fetched (or refreshed) outside the timed part
    before = target.cpu()
    phase = await load.run_phase(target.urls, token, tool, TOOLS[tool], clients=clients, calls_per_client=calls,
                                 kind=kind)
    return summarize(phase, target.cpu() - before)


async def warm_up(target: Target) -> None:
    """Seed 20 contacts that the search finds, and let both servers reach a steady state."""
    seeds = [f"Ada Lovelace {i}" for i in range(20)]
    await load.run_phase(target.urls, target.token(), "add_contact",
                         lambda c, n: {"name": seeds[n], "email": f"ada{n}@example.com"},
                         clients=1, calls_per_client=len(seeds))
    await load.run_phase(target.urls, target.token(), "search_contacts", search_arguments, clients=4,
                         calls_per_client=10)


def median_of(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


async def compare(ringfence: Target, bare: Target, sizes: Sizes, log) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """ABBA rounds of every (tool, concurrency) phase; the medians across rounds."""
    cases = [(tool, clients) for clients in (1, sizes.concurrency) for tool in TOOLS]
    samples: dict[tuple[str, int, str], list[dict[str, float]]] = {}
    for round_index in range(sizes.rounds):
        order = (ringfence, bare) if round_index % 2 == 0 else (bare, ringfence)
        for tool, clients in cases:
            calls = sizes.calls_single if clients == 1 else sizes.calls_each
            for target in order:
                result = await measured_phase(target, tool, clients, calls)
                samples.setdefault((tool, clients, target.name), []).append(result)
        log(f"round {round_index + 1}/{sizes.rounds} done")
    rows = []
    for tool, clients in cases:
        row: dict[str, Any] = {"tool": tool, "clients": clients}
        for target in (bare, ringfence):
            row[target.name] = median_of(samples[(tool, clients, target.name)])
        row["overhead"] = row["ringfence"]["median_ms"] / row["bare"]["median_ms"]
        rows.append(row)
    return rows


async def generator_cost(bare: Target, calls: int) -> dict[str, float]:
    """Generator CPU per call for the raw client and for httpx, against the bare server."""
    costs = {}
    for kind in ("raw", "httpx"):
        began = time.process_time()
        phase = await load.run_phase(bare.urls, None, "search_contacts", search_arguments, clients=1,
                                     calls_per_client=calls, kind=kind)
        costs[kind] = 1e6 * (time.process_time() - began) / phase.calls
    return costs


async def scaling(fleet: Fleet, sizes: Sizes, log) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Throughput of 1 and 2 processes on PostgreSQL + Redis, at full concurrency, unpinned."""
    databases = [await fresh_postgres(POSTGRES_ADMIN_URL) for _ in (1, 2)]  # one fresh database per fleet
    try:
        targets = [fleet.ringfence_shared(count, url, REDIS_URL, None)
                   for count, (url, _) in zip((1, 2), databases, strict=True)]
        for target in targets:
            await warm_up(target)
        samples: dict[str, list[dict[str, float]]] = {t.name: [] for t in targets}
        for round_index in range(sizes.scaling_rounds):
            for target in targets if round_index % 2 == 0 else targets[::-1]:
                for tool in TOOLS:
                    result = await measured_phase(target, tool, sizes.concurrency, sizes.calls_each)
                    samples[target.name].append({**result, "tool": tool})  # type: ignore[dict-item]
            log(f"scaling round {round_index + 1}/{sizes.scaling_rounds} done")
        rows = []
        for count, target in zip((1, 2), targets, strict=True):
            for tool in TOOLS:
                runs = [{k: v for k, v in s.items() if k != "tool"} for s in samples[target.name] if s["tool"] == tool]
                rows.append({"processes": count, "tool": tool, **median_of(runs)})
        fleet.stop(targets)
        return rows
    finally:
        fleet.stop()
        for _, name in databases:
            await drop_postgres(POSTGRES_ADMIN_URL, name)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from bench.calls.micro import guard_costs

    sizes = QUICK if args.quick else FULL
    if args.rounds:
        sizes.rounds = args.rounds
    cpus = os.cpu_count() or 1
    server_cpus, generator_cpus = ({0}, {1}) if cpus >= 2 and not args.no_pin else (None, None)

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if args.quick else "full",
        "sizes": asdict(sizes),
        "machine": {"cpus": cpus, "python": platform.python_version(), "system": platform.platform(terse=True),
                    "pinned": server_cpus is not None},
        "label": args.label,
    }
    with tempfile.TemporaryDirectory(prefix="ringfence-bench-") as temporary:
        work = Path(temporary)
        fleet = Fleet(work)
        try:
            log("starting ringfence (embedded authorization server) and the bare server")
            pin(0, generator_cpus)
            ringfence, bare = fleet.ringfence(server_cpus), fleet.bare(server_cpus)
            for target in (ringfence, bare):
                await warm_up(target)
            log("measuring the load generator's own cost (raw client vs httpx)")
            results["generator_cpu_us_per_call"] = await generator_cost(bare, 50 if args.quick else 300)
            log(f"comparing ringfence and bare: {sizes.rounds} rounds")
            results["comparison"] = await compare(ringfence, bare, sizes, log)
            fleet.stop([ringfence, bare])
            pin(0, set(range(cpus)))
            if not args.no_scaling:
                log("starting 1 and 2 ringfence processes on PostgreSQL and Redis")
                results["scaling"] = await scaling(fleet, sizes, log)
        finally:
            fleet.stop()
        log("timing each guard in-process")
        postgres = None if args.no_scaling else await fresh_postgres(POSTGRES_ADMIN_URL)
        try:
            costs = await guard_costs(work, iterations=sizes.micro_iterations,
                                      postgres_url=postgres[0] if postgres else None,
                                      redis_url=None if args.no_scaling else REDIS_URL)
        finally:
            if postgres:
                await drop_postgres(POSTGRES_ADMIN_URL, postgres[1])
        results["guards"] = [{**asdict(c), "per_second": c.per_second} for c in costs]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description="ringfence vs a bare MCP server: latency, throughput, guard costs.")
    parser.add_argument("--quick", action="store_true", help="a smoke run of seconds; numbers are meaningless")
    parser.add_argument("--rounds", type=int, help="ABBA rounds (default 5)")
    parser.add_argument("--no-scaling", action="store_true",
                        help="skip the PostgreSQL/Redis parts (1 vs 2 processes, audit on PostgreSQL, Redis limiter)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and generator to separate CPUs")
    parser.add_argument("--label", default="", help="a note printed above the tables, e.g. 'preliminary'")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="folder for tool_calls.*")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tool_calls.json").write_text(json.dumps(results, indent=2) + "\n")
    write_outputs(results, args.out)
    print((args.out / "tool_calls.md").read_text())


if __name__ == "__main__":
    main()
