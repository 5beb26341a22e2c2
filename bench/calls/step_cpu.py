"""CPU of single steps of a tool call, in-process: the minimum over N runs of each, in µs.

    .venv/bin/python bench/calls/step_cpu.py [--runs 200] [STEP ...]

The minimum, not the median: noise on a shared machine only ever adds CPU time, so the minimum of
enough runs is what the step itself costs, and before/after comparisons hold on a busy machine.
CPU is the calling thread's (``time.thread_time``) for steps that stay on it, the process's
(``time.process_time``) for steps that hand work to a thread (aiosqlite, the audit log's writer).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.calls.micro import contacts  # noqa: E402

Step = Callable[[], Any]
STEPS: dict[str, Callable[[Path], Awaitable[tuple[Step, Callable[[], int]]]]] = {}


def step(name: str) -> Callable[[Any], Any]:
    def register(make: Any) -> Any:
        STEPS[name] = make
        return make
    return register


@step("keyring")
async def keyring(work: Path) -> tuple[Step, Callable[[], int]]:
    """KeyRing.keys_for of the active key: what every token check asks the ring."""
    from ringfence.authserver.keys import KeyRing

    ring = KeyRing(work / "keys", token_lifetime=900)
    kid = ring.active.kid
    return lambda: ring.keys_for(kid), time.thread_time_ns


@step("output-guard-20")
async def output_guard(work: Path) -> tuple[Step, Callable[[], int]]:
    """guard_result on search_contacts' result of 20 contacts."""
    from mcp.server.mcpserver.tools import Tool

    from ringfence.guards.output import guard_result
    from ringfence.loader import load_app

    app = load_app(str(REPO / "bench" / "calls" / "contacts_unmetered.py"))
    search = app.tools["search_contacts"]
    twenty = Tool.from_function(search.fn, name=search.name).fn_metadata.convert_result(contacts(20))
    return lambda: guard_result(search, twenty), time.thread_time_ns


@step("owned-check")
async def owned_check(work: Path) -> tuple[Step, Callable[[], int]]:
    """The Owned statement check (store/owned.py) on search_contacts' SELECT, built afresh each time."""
    from sqlalchemy import func, or_, select

    from ringfence.store.owned import _refuse_bare_tables

    app_module = sys.modules.get("contacts_reference_app") or _reference_app()
    row = app_module.ContactRow

    def run() -> None:
        _refuse_bare_tables(select(row).where(or_(func.lower(row.name).like("%ada%"),
                                                  func.lower(row.email).like("%ada%"))).order_by(row.name).limit(50))

    return run, time.thread_time_ns


def _reference_app() -> Any:
    from ringfence.loader import load_app

    load_app(str(REPO / "bench" / "calls" / "contacts_unmetered.py"))
    return sys.modules["contacts_reference_app"]


@step("audit-append")
async def audit_append(work: Path) -> tuple[Step, Callable[[], int]]:
    """AuditLog.append on SQLite, committed (search_contacts' tool.call record)."""
    from ringfence.audit.log import AuditLog
    from ringfence.store.database import Database

    database = Database(f"sqlite+aiosqlite:///{(work / 'audit.db').resolve()}")
    await database.start()
    audit = AuditLog(database, work)
    summary = {"effect": "read", "open_world": False, "arguments_hash": "0" * 32, "argument_fields": ["query"],
               "argument_bytes": {"query": 5}}
    principal = "u-" + uuid.uuid4().hex
    return (lambda: audit.append("tool.call", principal=principal, tool="search_contacts", outcome="ok",
                                 latency_ms=1.5, payload=summary)), time.process_time_ns


@step("log-tool-call")
async def log_tool_call(work: Path) -> tuple[Step, Callable[[], int]]:
    """The redacting formatter on search_contacts' tool.call line (a new request id and arguments hash each time)."""
    import logging
    import secrets

    from ringfence.logs.configuration import pseudonym_redactor
    from ringfence.logs.context import bind_request_id, unbind
    from ringfence.logs.formatting import RedactingFormatter

    formatter = RedactingFormatter(pseudonym_redactor(work), "json")
    logger = logging.getLogger("ringfence.security")

    def run() -> None:
        details = {"effect": "read", "open_world": False, "argument_fields": ["query"], "argument_bytes": {"query": 5},
                   "arguments_hash": secrets.token_hex(16)}
        fields = {"event": "tool.call", "outcome": "ok", "principal": "b3b90b73c7cf4c60", "tool": "search_contacts",
                  "client_id": "02D3or0SHglXD58kRM-Rccpni59_lxG-", "latency_ms": 2.2, "details": details}
        record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "%s %s%s",
                                   ("tool.call", "ok", " search_contacts"), None, extra=fields)
        token = bind_request_id(secrets.token_hex(16))
        formatter.format(record)
        unbind(token)

    return run, time.thread_time_ns


async def minimum(run: Step, clock: Callable[[], int], runs: int) -> tuple[float, float]:
    samples = []
    for index in range(runs + 20):
        began = clock()
        outcome = run()
        if inspect.isawaitable(outcome):
            await outcome
        if index >= 20:  # warm-up
            samples.append(clock() - began)
    samples.sort()
    return samples[0] / 1000, samples[len(samples) // 2] / 1000


async def main_async(names: list[str], runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ringfence-steps-") as temporary:
        for name in names:
            run, clock = await STEPS[name](Path(temporary) / name)
            low, median = await minimum(run, clock, runs)
            print(f"{name:20} min {low:8.1f} µs   median {median:8.1f} µs   ({runs} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("steps", nargs="*", help=f"some of {', '.join(STEPS)} (default: all)")
    args = parser.parse_args()
    asyncio.run(main_async(args.steps or list(STEPS), args.runs))


if __name__ == "__main__":
    main()
