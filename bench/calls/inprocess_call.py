"""One tool call through the whole ASGI application, in this process: CPU per call, min of N.

    .venv/bin/python bench/calls/inprocess_call.py [--tool search_contacts] [--calls 200] [--profile out.prof]

The application is what ``ringfence serve bench/calls/contacts_unmetered.py`` builds (embedded
authorization server, SQLite, audit, logs, metrics), driven with ASGI messages instead of HTTP:
no uvicorn, no sockets, so that the CPU of one call can be taken as the minimum over many, which
noise on a shared machine only ever adds to. The access token comes from the real OAuth flow,
against a ``ringfence serve`` of the same data folder that is stopped before the measurement.

CPU is the whole process's (``time.process_time``), so that the output guards' and aiosqlite's
worker threads count; ``--bare`` measures the same calls on ``bench/calls/bare_contacts.py``.
The garbage collector is set up as each server sets it (``ringfence serve``:
``ringfence.cli.main.settle_heap``; the bare server: CPython's defaults), and the time spent in
collections during the measured calls is reported; ``--settled-bare`` gives the bare server
ringfence's settings, to tell what those save from what the security layer costs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.calls.load import ACCEPT, _call, _initialize, check_call  # noqa: E402
from bench.calls.servers import RINGFENCE_APP, embedded_tokens  # noqa: E402
from bench.tool_calls import TOOLS  # noqa: E402
from tests.support.serve import ServeProcess  # noqa: E402

ASGI = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def ringfence_app(work: Path) -> tuple[Any, str, str]:
    """The ASGI app of ``ringfence serve`` on a data folder where the real flow issued a token; (app, host, token)."""
    data = work / "data"
    server = ServeProcess(RINGFENCE_APP, "--data-dir", str(data))
    server.start(work)
    try:
        token = embedded_tokens(server, server.base_url, server.mcp_url).current()
    finally:
        server.stop()
    for name in [name for name in os.environ if name.startswith("RINGFENCE_")]:
        del os.environ[name]
    from ringfence.cli.main import start_logging
    from ringfence.config import Settings
    from ringfence.loader import load_app
    from ringfence.server import build_asgi

    settings = Settings.load(port=server.port, data_dir=data)
    start_logging("info", settings)
    return build_asgi(load_app(RINGFENCE_APP), settings), f"127.0.0.1:{server.port}", token


def bare_app(work: Path) -> tuple[Any, str, str | None]:
    from bench.calls.bare_contacts import build

    return build(work / "bare"), "127.0.0.1:8100", None


class Driver:
    """POSTs to /mcp as ASGI messages; the lifespan runs in a task."""

    def __init__(self, app: Any, host: str, token: str | None) -> None:
        self.app, self.host, self.token = app, host, token
        self.session: str | None = None
        self._lifespan_in: asyncio.Queue[dict] = asyncio.Queue()
        self._lifespan_out: asyncio.Queue[dict] = asyncio.Queue()

    async def start(self) -> None:
        self._lifespan = asyncio.create_task(self.app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                                      self._lifespan_in.get, self._lifespan_out.put))
        await self._lifespan_in.put({"type": "lifespan.startup"})
        started = await self._lifespan_out.get()
        assert started["type"] == "lifespan.startup.complete", started

    async def stop(self) -> None:
        await self._lifespan_in.put({"type": "lifespan.shutdown"})
        await self._lifespan_out.get()
        await self._lifespan

    async def post(self, message: dict[str, Any]) -> tuple[int, dict[bytes, bytes], bytes]:
        body = json.dumps(message).encode()
        headers = [(b"host", self.host.encode()), (b"content-type", b"application/json"), (b"accept", ACCEPT.encode()),
                   (b"content-length", str(len(body)).encode()), (b"user-agent", b"ringfence-bench")]
        if self.token:
            headers.append((b"authorization", f"Bearer {self.token}".encode()))
        if self.session:
            headers += [(b"mcp-session-id", self.session.encode()), (b"mcp-protocol-version", b"2025-11-25")]
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": "/mcp", "raw_path": b"/mcp", "query_string": b"",
                 "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000),
                 "server": ("127.0.0.1", int(self.host.rsplit(":", 1)[1])), "state": {}}
        sent = False
        done = asyncio.Event()
        status, answer_headers, chunks = 0, {}, []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(event: dict[str, Any]) -> None:
            nonlocal status, answer_headers
            if event["type"] == "http.response.start":
                status, answer_headers = event["status"], dict(event.get("headers", []))
            elif event["type"] == "http.response.body":
                chunks.append(event.get("body", b""))
                if not event.get("more_body", False):
                    done.set()

        await self.app(scope, receive, send)
        return status, answer_headers, b"".join(chunks)

    async def open_session(self) -> None:
        status, headers, body = await self.post(_initialize(0))
        assert status == 200, body
        self.session = headers[b"mcp-session-id"].decode()
        status, _, body = await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert status == 202, body


class CollectionTimer:
    """Counts the garbage collector's collections and the CPU time of the thread running each."""

    def __init__(self) -> None:
        self.count, self.seconds, self._began = 0, 0.0, 0.0
        gc.callbacks.append(self._observe)

    def _observe(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.thread_time()
        else:
            self.count += 1
            self.seconds += time.thread_time() - self._began

    def stop(self) -> None:
        gc.callbacks.remove(self._observe)


async def warmed_up(driver: Driver, tool: str, warm: int) -> None:
    """``driver`` started, its session open, 20 contacts added and ``tool`` called ``warm`` times."""
    await driver.start()
    await driver.open_session()
    seeds = [f"Ada Lovelace {i}" for i in range(20)]  # what bench/tool_calls.py's warm-up adds: 20 found
    for n, name in enumerate(seeds):
        check_call(*(await driver.post(_call(10_000 + n, "add_contact", {"name": name,
                                                                          "email": f"ada{n}@example.com"})))[::2])
    for n in range(warm):
        check_call(*(await driver.post(_call(n + 1, tool, TOOLS[tool](0, n))))[::2])


async def measure(driver: Driver, tool: str, calls: int, warm: int, profile: Path | None, *,
                  settled: bool) -> list[int]:
    arguments = TOOLS[tool]
    await warmed_up(driver, tool, warm)
    if settled:  # as `ringfence serve` does before serving; bench/calls/bare_contacts.py does not
        from ringfence.cli.main import settle_heap

        settle_heap()
    collections = CollectionTimer()
    profiler = cProfile.Profile() if profile else None
    cpu: list[int] = []
    for n in range(calls):
        message = _call(warm + n + 1, tool, arguments(1, n))
        if profiler:
            profiler.enable()
        started = time.process_time_ns()
        status, _, body = await driver.post(message)
        cpu.append(time.process_time_ns() - started)
        if profiler:
            profiler.disable()
        check_call(status, body)
    collections.stop()
    print(f"garbage collection: {collections.count} collections, {collections.seconds / calls * 1e6:.0f} µs "
          "per call", file=sys.__stdout__)
    if profiler and profile:
        profiler.dump_stats(str(profile))
    await driver.stop()
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", default="search_contacts", choices=sorted(TOOLS))
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warm", type=int, default=50)
    parser.add_argument("--bare", action="store_true", help="the bare MCPServer instead of ringfence")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the measured calls here")
    parser.add_argument("--settled-bare", action="store_true",
                        help="give the bare server ringfence's garbage-collector settings (settle_heap)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ringfence-inprocess-") as temporary:
        work = Path(temporary)
        app, host, token = bare_app(work) if args.bare else ringfence_app(work)
        cpu = asyncio.run(measure(Driver(app, host, token), args.tool, args.calls, args.warm, args.profile,
                                  settled=not args.bare or args.settled_bare))
    print(f"{'bare' if args.bare else 'ringfence'} {args.tool}: CPU per call min {min(cpu) / 1000:.0f} µs, "
          f"median {statistics.median(cpu) / 1000:.0f} µs ({len(cpu)} calls)", file=sys.__stdout__)


if __name__ == "__main__":
    main()
