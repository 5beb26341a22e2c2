"""Where ringfence's CPU goes inside real tool calls: each step timed where it runs, in the call.

    .venv/bin/python bench/calls/call_steps.py [--tool search_contacts] [--calls 300] [--rounds 3]
    .venv/bin/python bench/calls/call_steps.py --served 1000 [--tool add_contact]

``bench/calls/micro.py`` times each check alone, many times in a row: warm, with its code and data
in the CPU's caches. In a call the same step runs once, between the SDK, SQLAlchemy and the other
steps, and costs more. This script runs the whole application in-process (as
``inprocess_call.py`` does: ``ringfence serve``'s ASGI app, driven with ASGI messages, a token from
the real OAuth flow) and times, inside each measured call, every step of ringfence's path on a
clock (``perf_counter``: on the loop's thread a step that does not wait spends CPU time, and this clock
costs a tenth of the thread's CPU clock to read; the one step that may wait is the audit append that
hands its commit and a checkpoint to a worker thread, once every 250 commits, and its row counts that
wait). Times are exclusive: a step's own time, without
the probed steps it calls (the log line's formatting is its own row, not part of the log line's),
and a collection of the garbage collector is a row of its own wherever it falls.

The probes replace the named functions for the probed phases only (this is a benchmark, not the
server); they cost a few microseconds each (the run prints how much in all: part of it lands in
the steps' times), so the CPU per call is measured without them too, in phases alternating with the
probed ones, and the bare server's (``inprocess_call.py --bare``, its
own process) in the same rounds. What the probes do not reach (the ASGI layers above the gate, the
wrapper's and the gate's own frames) is the remainder: ringfence's CPU minus the bare server's
minus the steps.

"Alone" re-runs a step that has no side effect on the inputs of its last call, 2,000 times in a
row, right after the measured calls: the same work, warm.

``--served N`` serves the same app with uvicorn in this process, with ``ringfence serve``'s options
(the request-head guard of ``ringfence.ops.protocol`` in front of uvicorn's h11), and sends N calls
from ``bench/calls/load.py``'s client, a process on the other CPU; the probes then also time what
uvicorn and the guard do for each call. There each step is timed on its thread's CPU clock, so the audit
append that hands a checkpoint to a worker thread counts its CPU, not its wait. Totals there are means
over whole phases (what ``bench/run`` reports), and the bare server is measured the same way, in its own
process, before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.calls.inprocess_call import Driver, ringfence_app, warmed_up  # noqa: E402
from bench.calls.load import _call, check_call  # noqa: E402
from bench.calls.servers import Fleet  # noqa: E402
from bench.tool_calls import TOOLS  # noqa: E402

ALONE_RUNS = 2000
TIMES, NONE = "\u00d7", "\u2013"  # the table's multiplication sign and dash


@dataclass(frozen=True)
class Probe:
    label: str
    owner: str  # module path, or "module:Class"
    attribute: str
    pure: bool = False  # re-runnable on its last inputs for the "alone" column
    both: bool = False  # the bare server does it too (--served): not part of what ringfence adds


# In the order of the request path. The SDK's own work and the author's function are the bare
# server's too; they are not probed.
PROBES = (
    Probe("gate: parse the body into a typed call", "ringfence.resource.gate", "parse_call", pure=True),
    Probe("gate: token, cached verification", "ringfence.resource.gate:McpGate", "authenticate"),
    Probe("gate: scopes", "ringfence.resource.gate:McpGate", "authorize", pure=True),
    Probe("gate: session binding", "ringfence.resource.gate:McpGate", "admit_session", pure=True),
    Probe("gate: rate-limit budgets (4, in-process)", "ringfence.resource.gate:McpGate", "spend_budget"),
    Probe("gate: argument screening", "ringfence.guards.screening:ArgumentScreen", "screen", pure=True),
    Probe("gate: canonical JSON for the SDK", "ringfence.resource.gate", "canonical_body", pure=True),
    Probe("wrapper: owner scope of the app's SQL (Owned)", "ringfence.store.owned", "_refuse_bare_tables",
          pure=True),
    Probe("wrapper: output guard", "ringfence.guards.output", "guard_result", pure=True),
    Probe("wrapper: argument summary (keyed hash)", "ringfence.events:Events", "summarize", pure=True),
    Probe("log lines, formatted (redacted JSON; served, the access line too)",
          "ringfence.logs.formatting:RedactingFormatter", "format", pure=True),
    Probe("event: log line, the rest (record, write)", "ringfence.logs.event_lines:EventLogObserver", "observe"),
    Probe("event: metrics", "ringfence.monitor.metrics:Metrics", "observe"),
    Probe("event: alert detectors", "ringfence.monitor.detectors:SuspiciousActivity", "observe"),
    Probe("event: audit payload redacted", "ringfence.events:Events", "_redacted", pure=True),
    Probe("event: audit record appended and committed (SQLite)", "ringfence.audit.log:AuditLog", "append"),
    Probe("event: the rest of Events.record", "ringfence.events:Events", "record"),
)
# With --served only: what uvicorn and the request-head guard do for each call.
HTTP_PROBES = (
    Probe("http: request-head guard, its own read of the request", "ringfence.ops.protocol:HeadGuard",
          "data_received"),
    Probe("http: request-head guard, where each answer ends", "ringfence.ops.protocol:GuardedTransport", "write"),
    Probe("http: uvicorn's h11 read of the request (bare too)", "uvicorn.protocols.http.h11_impl:H11Protocol",
          "data_received", both=True),
    Probe("http: uvicorn's h11 writing of the answer (bare too)",
          "uvicorn.protocols.http.h11_impl:RequestResponseCycle", "send", both=True),
    Probe("http: socket writes (bare too)", "asyncio.selector_events:_SelectorSocketTransport", "write", both=True),
)
COLLECTION = "garbage collection, wherever it falls (mean)"
# The load generator of --served: bench/calls/load.py's raw HTTP/1.1 client, one client, on CPU 1; with
# 0 calls, bench/tool_calls.py's warm-up (the 20 contacts the search finds, then a few searches).
LOAD = """
import asyncio, os, sys, types
sys.path.insert(0, sys.argv[5])
os.sched_setaffinity(0, {1})
from bench.calls import load
from bench.tool_calls import TOOLS, warm_up
url, token, tool, calls = sys.argv[1], sys.argv[2] or None, sys.argv[3], int(sys.argv[4])
if calls:
    asyncio.run(load.run_phase([url], token, tool, TOOLS[tool], clients=1, calls_per_client=calls))
else:
    asyncio.run(warm_up(types.SimpleNamespace(urls=[url], token=lambda: token)))
"""


@dataclass
class Ledger:
    """Exclusive time per label (of the call in progress in-process, of the whole phase served), on
    ``clock`` (nanoseconds); a stack of open probes per thread and task."""

    clock: Callable[[], int] = time.perf_counter_ns
    recording: bool = False
    call: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    stacks: dict[Any, list[list[Any]]] = field(default_factory=dict)
    last_inputs: dict[str, tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = field(default_factory=dict)

    def enter(self, label: str) -> list[Any]:
        frame = [label, self.clock(), 0]  # label, start, time of probed children
        self._stack().append(frame)
        return frame

    def leave(self, frame: list[Any]) -> None:
        elapsed = self.clock() - frame[1]
        stack = self._stack()
        stack.pop()
        if stack:
            stack[-1][2] += elapsed
        if self.recording:
            self.call[frame[0]] = self.call.get(frame[0], 0) + elapsed - frame[2]
            self.counts[frame[0]] = self.counts.get(frame[0], 0) + 1

    def _stack(self) -> list[list[Any]]:
        try:
            task = asyncio.current_task()  # None in a protocol's callbacks (--served)
        except RuntimeError:  # a thread without an event loop
            task = None
        return self.stacks.setdefault((threading.get_ident(), task), [])


def resolve(owner: str) -> Any:
    module_name, _, class_name = owner.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name) if class_name else module


def probed(ledger: Ledger, probe: Probe, original: Callable[..., Any]) -> Callable[..., Any]:
    if asyncio.iscoroutinefunction(original):
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            frame = ledger.enter(probe.label)
            try:
                return await original(*args, **kwargs)
            finally:
                ledger.leave(frame)
        return timed_async

    def timed(*args: Any, **kwargs: Any) -> Any:
        if probe.pure and ledger.recording:
            ledger.last_inputs[probe.label] = (original, args, kwargs)
        frame = ledger.enter(probe.label)
        try:
            return original(*args, **kwargs)
        finally:
            ledger.leave(frame)
    return timed


class Probes:
    """Installs and removes the probes (and a garbage-collector callback that books collections)."""

    def __init__(self, ledger: Ledger, probes: tuple[Probe, ...] = PROBES) -> None:
        self.ledger = ledger
        self.originals: list[tuple[Any, Probe, Callable[..., Any]]] = []
        for probe in probes:
            owner = resolve(probe.owner)
            self.originals.append((owner, probe, getattr(owner, probe.attribute)))
        self._collection: list[Any] | None = None

    def install(self) -> None:
        for owner, probe, original in self.originals:
            setattr(owner, probe.attribute, probed(self.ledger, probe, original))
        gc.callbacks.append(self._collected)

    def remove(self) -> None:
        for owner, probe, original in self.originals:
            setattr(owner, probe.attribute, original)
        gc.callbacks.remove(self._collected)

    def _collected(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._collection = self.ledger.enter(COLLECTION)
        elif self._collection is not None:
            self.ledger.leave(self._collection)
            self._collection = None


async def measure(driver: Driver, tool: str, calls: int, rounds: int, ledger: Ledger,
                  probes: Probes) -> tuple[list[int], list[dict[str, int]], list[int], list[float]]:
    """CPU per call without probes, each call's step times, CPU per call with probes, and the bare
    server's median CPU per call of each round: ``rounds`` rounds of the three."""
    from ringfence.cli.main import settle_heap

    arguments = TOOLS[tool]
    await warmed_up(driver, tool, warm=50)
    settle_heap()  # as `ringfence serve` does before serving
    plain: list[int] = []
    steps: list[dict[str, int]] = []
    with_probes: list[int] = []
    bare: list[float] = []
    number = 100
    for _ in range(rounds):
        bare.append(await asyncio.to_thread(bare_cpu, tool, calls))  # its own process, while this one waits
        for probing in (False, True):
            if probing:
                probes.install()
            for _ in range(calls):
                number += 1
                message = _call(number, tool, arguments(1, number))
                ledger.call, ledger.recording = {}, probing
                started = time.process_time_ns()
                status, _, body = await driver.post(message)
                (with_probes if probing else plain).append(time.process_time_ns() - started)
                ledger.recording = False
                check_call(status, body)
                if probing:
                    steps.append(ledger.call)
            if probing:
                probes.remove()
    await driver.stop()
    return plain, steps, with_probes, bare


def alone(ledger: Ledger) -> dict[str, float]:
    """Each pure step re-run on its last call's inputs, warm: median µs of ALONE_RUNS."""
    logging.disable(logging.CRITICAL)  # a re-run that logs must not write
    medians: dict[str, float] = {}
    try:
        for label, (function, args, kwargs) in ledger.last_inputs.items():
            times = []
            for _ in range(ALONE_RUNS):
                started = time.perf_counter_ns()
                function(*args, **kwargs)
                times.append(time.perf_counter_ns() - started)
            medians[label] = statistics.median(times) / 1000
    finally:
        logging.disable(logging.NOTSET)
    return medians


def bare_cpu(tool: str, calls: int) -> float:
    """The bare server's CPU per call (µs, median), from ``inprocess_call.py --bare`` in its own process."""
    out = subprocess.run([sys.executable, str(REPO / "bench/calls/inprocess_call.py"), "--bare", "--tool", tool,
                          "--calls", str(calls)], capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("bare "))
    return float(line.split("median ")[1].split(" µs")[0])


def report(tool: str, plain: list[int], steps: list[dict[str, int]], with_probes: list[int], bare: list[float],
           counts: dict[str, int], warm: dict[str, float]) -> str:
    ringfence, probed = statistics.median(plain) / 1000, statistics.median(with_probes) / 1000
    base = statistics.median(bare)
    labels = [probe.label for probe in PROBES] + [COLLECTION]
    attributed = statistics.median(sum(call.values()) for call in steps) / 1000
    lines = [
        f"`{tool}`, in-process, {len(plain)} calls without probes and {len(steps)} with, alternating, and the bare "
        f"server in the same {len(bare)} rounds. CPU per call (median): ringfence {ringfence:.0f} µs, "
        f"bare {base:.0f} µs: ringfence adds {ringfence - base:.0f} µs ({ringfence / base:.2f}{TIMES}). "
        "With the probes on it adds "
        f"{probed - base:.0f} µs (the probes' own cost: {probed - ringfence:.0f} µs), of which the steps below take "
        f"{attributed:.0f} (median of each call's sum).",
        "",
        "| step | times per call | µs in the call (median) | µs alone, warm (median) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label in labels:
        if counts.get(label, 0) < len(steps) / 2 and label != COLLECTION:
            continue  # a step of a few calls only (none of add_contact's SQL goes through the Owned check)
        in_call = statistics.median(call.get(label, 0) for call in steps) / 1000
        if label == COLLECTION:  # in a few calls only: its median is 0, its mean says what it costs
            in_call = statistics.mean(call.get(label, 0) for call in steps) / 1000
        alone_text = f"{warm[label]:.1f}" if label in warm else NONE
        lines.append(f"| {label} | {counts.get(label, 0) / len(steps):.2g} | {in_call:.1f} | {alone_text} |")
    lines.append(f"| the rest: ASGI layers above the gate, the gate's and the wrapper's own frames, the probes' "
                 f"frames | | {probed - base - attributed:.0f} | |")
    return "\n".join(lines)


def served(tool: str, calls: int, warm_up: int = 300) -> str:
    """``--served``: ringfence served by uvicorn in this process as ``ringfence serve`` serves it, on CPU 0,
    ``calls`` calls from a load generator of its own on CPU 1, without the probes and then with them,
    SERVED_ROUNDS times; the bare server (its own process, on CPU 0) the same way, before and after.
    Each phase follows ``warm_up`` calls that are not timed. Step times are means: totals over the probed calls."""
    from ringfence.cli.main import run_server
    from ringfence.config import Settings

    os.sched_setaffinity(0, {0})  # this thread, and every thread it starts
    ledger = Ledger(clock=time.thread_time_ns)  # CPU only: a step that waits for a worker thread counts its own work
    probes = Probes(ledger, PROBES + HTTP_PROBES)
    cpu: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ringfence-steps-") as temporary:
        work = Path(temporary)
        fleet = Fleet(work)
        try:
            bare = fleet.bare({0})
            load(bare.urls[0], None, tool, 0)
            bare_cpu = [timed_load(bare.cpu, bare.urls[0], None, tool, calls, warm_up)]
            app, host, token = ringfence_app(work)
            url = f"http://{host}/mcp"

            def drive() -> None:
                try:
                    listening(host)
                    load(url, token, tool, 0)
                    plain, probed = [], []
                    for _ in range(SERVED_ROUNDS):
                        plain.append(timed_load(time.process_time, url, token, tool, calls, warm_up))
                        probes.install()
                        probed.append(timed_load(time.process_time, url, token, tool, calls, warm_up, ledger))
                        ledger.recording = False
                        probes.remove()
                    cpu["plain"], cpu["probed"] = statistics.mean(plain), statistics.mean(probed)
                finally:
                    os.kill(os.getpid(), signal.SIGINT)  # uvicorn stops as on Ctrl-C

            threading.Thread(target=drive, daemon=True).start()
            run_server(app, Settings.load(port=int(host.rsplit(":", 1)[1]), data_dir=work / "data"), "info")
            bare_cpu.append(timed_load(bare.cpu, bare.urls[0], None, tool, calls, warm_up))
        finally:
            fleet.stop()
    cpu["bare"] = statistics.mean(bare_cpu)
    return served_report(tool, calls, cpu, ledger)


def timed_load(clock: Callable[[], float], url: str, token: str | None, tool: str, calls: int, warm_up: int,
               ledger: Ledger | None = None) -> float:
    """CPU per call (µs, by ``clock``, in seconds) of ``calls`` calls, after ``warm_up`` calls not timed;
    ``ledger`` records the steps of those calls."""
    if warm_up:
        load(url, token, tool, warm_up)
    if ledger is not None:
        ledger.recording = True
    started = clock()
    load(url, token, tool, calls)
    return (clock() - started) / calls * 1e6


SERVED_ROUNDS = 2  # ringfence without the probes, then with them, twice


def load(url: str, token: str | None, tool: str, calls: int) -> None:
    subprocess.run([sys.executable, "-c", LOAD, url, token or "", tool, str(calls), str(REPO)], check=True)


def listening(host: str, timeout: float = 60) -> None:
    address, port = host.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((address, int(port)), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def served_report(tool: str, calls: int, cpu: dict[str, float], ledger: Ledger) -> str:
    ringfence, probed, bare = cpu["plain"], cpu["probed"], cpu["bare"]
    labels = [probe.label for probe in PROBES + HTTP_PROBES] + [COLLECTION]
    shared = {probe.label for probe in HTTP_PROBES if probe.both}
    calls *= SERVED_ROUNDS
    attributed = sum(time for label, time in ledger.call.items() if label not in shared) / calls / 1000
    lines = [
        f"`{tool}`, served by uvicorn in this process as `ringfence serve` serves it (CPU 0), {calls} calls from "
        f"`bench/calls/load.py`'s client (CPU 1) without the probes and {calls} with them, alternating; the bare "
        f"server, its own process, before and after. CPU per call (mean): ringfence {ringfence:.0f} µs, "
        f"bare {bare:.0f} µs: ringfence adds {ringfence - bare:.0f} µs ({ringfence / bare:.2f}{TIMES}). "
        "With the probes on it adds "
        f"{probed - bare:.0f} µs, of which its steps below take {attributed:.0f} (the bare server's own left out).",
        "",
        "| step | times per call | µs per call (mean) |",
        "| --- | ---: | ---: |",
    ]
    for label in labels:
        count = ledger.counts.get(label, 0)
        if count >= calls / 2 or label == COLLECTION:
            lines.append(f"| {label} | {count / calls:.2g} | {ledger.call.get(label, 0) / calls / 1000:.1f} |")
    lines.append(f"| the rest: ASGI layers, the gate's and the wrapper's own frames, the probes' frames, the extra "
                 f"asyncio and socket work of ringfence's answers | | {probed - bare - attributed:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", default="search_contacts", choices=sorted(TOOLS))
    parser.add_argument("--calls", type=int, default=300, help="calls per phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--served", type=int, metavar="CALLS",
                        help="serve with uvicorn instead, and time this many calls from a load generator")
    parser.add_argument("--warm-up", type=int, default=300, metavar="CALLS",
                        help="--served: calls before each timed phase, not timed")
    args = parser.parse_args()
    if args.served:
        print(served(args.tool, args.served, args.warm_up), file=sys.__stdout__)
        return
    ledger = Ledger()
    with tempfile.TemporaryDirectory(prefix="ringfence-steps-") as temporary:
        app, host, token = ringfence_app(Path(temporary))
        plain, steps, with_probes, bare = asyncio.run(
            measure(Driver(app, host, token), args.tool, args.calls, args.rounds, ledger, Probes(ledger)))
        warm = alone(ledger)
    print(report(args.tool, plain, steps, with_probes, bare, ledger.counts, warm), file=sys.__stdout__)


if __name__ == "__main__":
    main()
