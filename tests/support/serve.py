"""Runs a real `ringfence serve` process and talks to it over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.idp import free_port

REPO = Path(__file__).resolve().parents[2]
CONTACTS_APP = str(REPO / "examples" / "contacts" / "app.py")
MCP_ACCEPT = "application/json, text/event-stream"


class ServeProcess:
    """``ringfence serve TARGET ...`` on a free loopback port; stopped by :meth:`stop`."""

    def __init__(self, target: str, *args: str, env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.mcp_url = f"{self.base_url}/mcp"
        self.metadata_url = f"{self.base_url}/.well-known/oauth-protected-resource/mcp"
        self.command = [sys.executable, "-m", "ringfence", "serve", target, "--port", str(self.port), *args]
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[str] | None = None
        self.log_path: Path | None = None

    def start(self, log_dir: Path, timeout: float = 20) -> ServeProcess:
        self.log_path = log_dir / f"serve-{self.port}.log"
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            self.command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
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
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

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

    def call_tool(self, name: str, arguments: dict | None = None, *, token: str | None = None,
                  meta: dict | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        """A 2026-07-28 ``tools/call`` (stateless: no handshake), as a single POST."""
        params: dict[str, Any] = {"name": name, "arguments": arguments or {}}
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "ringfence-tests", "version": "0"},
            "io.modelcontextprotocol/clientCapabilities": {},
            **(meta or {}),
        }
        return self.post(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params},
            token=token,
            headers={"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": name,
                     **(headers or {})},
        )
