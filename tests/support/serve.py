"""Runs a real `ringfence serve` process and talks to it over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.idp import free_port

REPO = Path(__file__).resolve().parents[2]
CONTACTS_APP = str(REPO / "examples" / "contacts" / "app.py")
MCP_ACCEPT = "application/json, text/event-stream"
MODERN_VERSION = "2026-07-28"
LEGACY_VERSION = "2025-11-25"


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a `ringfence serve` child: this one without any ``RINGFENCE_*`` variable.

    ringfence refuses to start on an unknown ``RINGFENCE_*`` variable (and would obey a known
    one), so a developer's shell or the tests' own ``RINGFENCE_TEST_POSTGRES`` must not leak in;
    each test passes the settings it means explicitly.
    """
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("RINGFENCE_")}
    return {**inherited, **(extra or {})}


class ServeProcess:
    """``ringfence serve TARGET ...`` on a free loopback port; stopped by :meth:`stop`."""

    def __init__(self, target: str, *args: str, env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.mcp_url = f"{self.base_url}/mcp"
        self.metadata_url = f"{self.base_url}/.well-known/oauth-protected-resource/mcp"
        self.command = [sys.executable, "-m", "ringfence", "serve", target, "--port", str(self.port), *args]
        self.env = server_env(env)
        self.process: subprocess.Popen[str] | None = None
        self.log_path: Path | None = None
        self._interrupted = False

    def start(self, log_dir: Path, timeout: float = 20) -> ServeProcess:
        return self.launch(log_dir).wait_ready(timeout)

    def launch(self, log_dir: Path) -> ServeProcess:
        """Start the process without waiting for it (see :func:`start_together`)."""
        self.log_path = log_dir / f"serve-{self.port}.log"
        log = self.log_path.open("w")
        with log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                self.command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, text=True
            )
        self._interrupted = False
        return self

    def wait_ready(self, timeout: float = 20) -> ServeProcess:
        """Block until the metadata document answers 200."""
        assert self.process is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ringfence serve exited early:\n{self.logs()}")
            try:
                if httpx.get(self.metadata_url, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"ringfence serve did not become ready:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def stop(self) -> None:
        self.interrupt()
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def interrupt(self) -> None:
        """Ask for a graceful shutdown (once: uvicorn treats a second SIGINT as "exit now")."""
        if self.process is not None and self.process.poll() is None and not self._interrupted:
            self.process.send_signal(signal.SIGINT)
            self._interrupted = True

    # Raw HTTP -------------------------------------------------------------------------------

    def post(self, message: Any, *, token: str | None = None, headers: dict[str, str] | None = None,
             content: bytes | None = None) -> httpx.Response:
        """One POST to /mcp: a JSON-RPC message (or raw ``content``), optionally with a bearer token."""
        all_headers = {"content-type": "application/json", "accept": MCP_ACCEPT, **(headers or {})}
        if token is not None:
            all_headers["authorization"] = f"Bearer {token}"
        if content is None:
            return httpx.post(self.mcp_url, json=message, headers=all_headers, timeout=10)
        return httpx.post(self.mcp_url, content=content, headers=all_headers, timeout=10)

    def request(self, method: str, params: dict | None = None, *, token: str | None = None,
                meta: dict | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        """A 2026-07-28 request (stateless: no handshake) as a single POST, with its routing headers."""
        params = {**(params or {})}
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
            "io.modelcontextprotocol/clientInfo": {"name": "ringfence-tests", "version": "0"},
            "io.modelcontextprotocol/clientCapabilities": {},
            **(meta or {}),
        }
        routing = {"mcp-protocol-version": MODERN_VERSION, "mcp-method": method}
        if "name" in params or "uri" in params:  # Mcp-Name: a tool's or prompt's name, a resource's URI
            routing["mcp-name"] = params.get("name", params.get("uri"))
        return self.post(
            {"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            token=token,
            headers={**routing, **(headers or {})},
        )

    def call_tool(self, name: str, arguments: dict | None = None, *, token: str | None = None,
                  meta: dict | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        """A 2026-07-28 ``tools/call`` (stateless: no handshake), as a single POST."""
        return self.request("tools/call", {"name": name, "arguments": arguments or {}}, token=token, meta=meta,
                            headers=headers)

    def initialize(self, *, token: str | None = None) -> httpx.Response:
        """A 2025-11-25 ``initialize``: opens a handshake-era session (``Mcp-Session-Id`` in the answer)."""
        return self.post(
            {"jsonrpc": "2.0", "id": 0, "method": "initialize",
             "params": {"protocolVersion": LEGACY_VERSION, "capabilities": {},
                        "clientInfo": {"name": "ringfence-tests", "version": "0"}}},
            token=token,
        )


@contextmanager
def served(target: str, *args: str, log_dir: Path, env: dict[str, str] | None = None) -> Iterator[ServeProcess]:
    """``ringfence serve TARGET ARGS...`` running for the ``with`` block, its log in ``log_dir``."""
    server = ServeProcess(target, *args, env=env).start(log_dir)
    try:
        yield server
    finally:
        server.stop()


def start_together(log_dir: Path, *servers: ServeProcess, timeout: float = 30) -> tuple[ServeProcess, ...]:
    """Launch several servers at once (each spends ~2 s importing), then wait for all of them."""
    for server in servers:
        server.launch(log_dir)
    try:
        for server in servers:
            server.wait_ready(timeout)
    except BaseException:
        stop_together(*servers)
        raise
    return servers


def stop_together(*servers: ServeProcess) -> None:
    for server in servers:
        server.interrupt()
    for server in servers:
        server.stop()
