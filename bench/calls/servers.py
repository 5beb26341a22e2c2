"""The processes under test, started on loopback: ringfence (embedded authorization server) and bare.

ringfence runs as in production by default: ``ringfence serve`` with its embedded OAuth 2.1
authorization server, and the benchmark gets its access token through the real flow (dynamic
registration, sign-in, consent, PKCE code exchange), so every call carries an ES256 JWT that the
server verifies as it would a client's.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.calls.load import _initialize
from tests.support.idp import free_port
from tests.support.oauth import BrowserLikeUser, DirectClient, first_user
from tests.support.serve import REPO, ServeProcess, server_env

RINGFENCE_APP = str(REPO / "bench" / "calls" / "contacts_unmetered.py")
BARE_APP = str(REPO / "bench" / "calls" / "bare_contacts.py")
TOKEN_REFRESH_AFTER = 600  # seconds; access tokens live 15 minutes
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def pin(pid: int, cpus: set[int] | None) -> None:
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(pid, cpus)


@dataclass
class Target:
    """One server under test: its processes, its MCP URLs (one per process) and how to get a token."""

    name: str
    processes: list[subprocess.Popen[str]]
    urls: list[str]
    tokens: TokenSource | None = None

    def token(self) -> str | None:
        return self.tokens.current() if self.tokens else None

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.processes)


@dataclass
class TokenSource:
    """An access token from the embedded authorization server, fetched again before it expires."""

    client: DirectClient
    user: BrowserLikeUser
    scope: str
    fetched_at: float = 0.0
    value: str = field(default="", repr=False)

    def current(self) -> str:
        if not self.value or time.monotonic() - self.fetched_at > TOKEN_REFRESH_AFTER:
            self.value = self.client.tokens(self.user, scope=self.scope)["access_token"]
            self.fetched_at = time.monotonic()
        return self.value


def embedded_tokens(server: ServeProcess, issuer: str, resource: str, scope: str = "contacts:write") -> TokenSource:
    """Register a client, sign in as the first user and consent: the real OAuth 2.1 flow."""
    account = first_user(server.logs())
    client = DirectClient.register(issuer, resource, client_name="ringfence bench")
    return TokenSource(client, BrowserLikeUser(issuer, account), scope)


class BareProcess(ServeProcess):
    """``python bench/calls/bare_contacts.py``: ready when ``initialize`` answers 200."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(BARE_APP)
        self.command = [sys.executable, BARE_APP, "--port", str(self.port), "--data-dir", str(data_dir)]
        self.metadata_url = self.mcp_url

    def wait_ready(self, timeout: float = 20) -> BareProcess:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the bare server exited early:\n{self.logs()}")
            try:
                if self.post(_initialize(0)).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the bare server did not become ready:\n{self.logs()}")


@dataclass
class Fleet:
    """Everything started for a run, stopped together."""

    work: Path
    started: list[ServeProcess] = field(default_factory=list)

    def ringfence(self, cpus: set[int] | None) -> Target:
        data = self.work / "ringfence"
        server = self._start(ServeProcess(RINGFENCE_APP, "--data-dir", str(data)), data, cpus)
        tokens = embedded_tokens(server, server.base_url, server.mcp_url)
        return Target("ringfence", [server.process], [server.mcp_url], tokens)  # type: ignore[list-item]

    def bare(self, cpus: set[int] | None) -> Target:
        data = self.work / "bare"
        server = self._start(BareProcess(data), data, cpus)
        return Target("bare", [server.process], [server.mcp_url])  # type: ignore[list-item]

    def ringfence_shared(self, count: int, database_url: str, redis_url: str, cpus: set[int] | None) -> Target:
        """``count`` processes behind one public URL, on one PostgreSQL database and one Redis.

        Each process binds its own port and accepts it as a Host (``--allowed-host``), as instances
        behind a load balancer would; they share the signing keys (one data folder), the database
        and the rate-limit budgets. A client keeps to one process (its session lives there).
        """
        data = self.work / f"shared-{count}-{uuid.uuid4().hex[:6]}"
        ports = [free_port() for _ in range(count)]
        public = f"http://127.0.0.1:{ports[0]}"
        processes = []
        for port in ports:  # one after another: the first creates the tables, keys and first user
            server = ServeProcess(RINGFENCE_APP, "--data-dir", str(data), "--public-url", public,
                                  "--allowed-host", f"127.0.0.1:{port}", "--database-url", database_url,
                                  "--redis-url", redis_url, port=port)
            processes.append(self._start(server, data, cpus))
        tokens = embedded_tokens(processes[0], public, public + "/mcp")
        return Target(f"ringfence x{count}", [p.process for p in processes],  # type: ignore[misc]
                      [p.mcp_url for p in processes], tokens)

    def _start(self, server: ServeProcess, log_dir: Path, cpus: set[int] | None) -> ServeProcess:
        log_dir.mkdir(parents=True, exist_ok=True)
        server.env = server_env({"PYTHONDONTWRITEBYTECODE": "1"})
        self.started.append(server)
        server.launch(log_dir)
        assert server.process is not None
        pin(server.process.pid, cpus)
        return server.wait_ready(60)

    def stop(self, names: list[Target] | None = None) -> None:
        servers = self.started if names is None else [
            s for s in self.started if any(s.process in target.processes for target in names)]
        for server in servers:
            server.interrupt()
        for server in servers:
            server.stop()
            if server in self.started:
                self.started.remove(server)


async def fresh_postgres(admin_url: str) -> tuple[str, str]:
    """Create an empty database; returns (its async SQLAlchemy URL, its name)."""
    import asyncpg

    name = f"ringfence_bench_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}", name


async def drop_postgres(admin_url: str, name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def run_async(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)
