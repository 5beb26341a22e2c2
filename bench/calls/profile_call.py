"""Where a ringfence tool call spends its time: ``ringfence serve`` under cProfile, N calls, top costs.

    .venv/bin/python bench/calls/profile_call.py [--calls 300] [--tool search_contacts] [--top 30]

cProfile sees the event-loop thread only; work done in worker threads (the output guards run
there) shows up as time waiting for the thread, and is timed on its own by ``bench/calls/micro.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.calls import load  # noqa: E402
from bench.calls.servers import RINGFENCE_APP, Fleet, Target, embedded_tokens, pin  # noqa: E402
from bench.tool_calls import TOOLS, warm_up  # noqa: E402
from tests.support.serve import ServeProcess  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--tool", default="search_contacts", choices=sorted(TOOLS))
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--save", type=Path, help="keep the raw profile here (for snakeviz, pstats)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ringfence-profile-") as temporary:
        work = Path(temporary)
        output = work / "serve.prof"
        fleet = Fleet(work)
        server = ServeProcess(RINGFENCE_APP, "--data-dir", str(work / "data"))
        server.command = [sys.executable, "-m", "cProfile", "-o", str(output), *server.command[1:]]
        pin(0, {1})
        try:
            fleet._start(server, work / "data", {0})
            target = Target("ringfence", [server.process], [server.mcp_url],  # type: ignore[list-item]
                            embedded_tokens(server, server.base_url, server.mcp_url))
            asyncio.run(warm_up(target))
            asyncio.run(load.run_phase(target.urls, target.token(), args.tool, TOOLS[args.tool], clients=1,
                                       calls_per_client=args.calls))
        finally:
            fleet.stop()
        if args.save:
            args.save.write_bytes(output.read_bytes())
        print_request_costs(pstats.Stats(str(output)), args.calls, args.top)


def print_request_costs(stats: pstats.Stats, calls: int, top: int) -> None:
    """The request path's functions by cumulative time per tool call (start-up and imports left out)."""
    rows = []
    for (path, line, name), (_, ncalls, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        if name == "<module>" or "importlib" in path or "/typer/" in path:
            continue
        rows.append((cumulative, ncalls, f"{path.replace(str(REPO) + '/', '').split('site-packages/')[-1]}:{line}"
                                         f"({name})"))
    print(f"{'ms per call':>12} {'calls':>8}  function   ({calls} tool calls, event-loop thread)")
    for cumulative, ncalls, label in sorted(rows, reverse=True)[:top]:
        print(f"{1000 * cumulative / calls:12.3f} {ncalls:8d}  {label}")


if __name__ == "__main__":
    main()
