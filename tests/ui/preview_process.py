"""Runs a real `ringfence preview` process against a running server."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.idp import free_port
from tests.support.serve import REPO, server_env


class PreviewProcess:
    """``ringfence preview MCP_URL`` on free loopback ports, the token in its environment; stopped by :meth:`stop`."""

    def __init__(self, mcp_url: str, token: str | None) -> None:
        self.port, self.widget_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.widget_origin = f"http://localhost:{self.widget_port}"
        self.command = [sys.executable, "-m", "ringfence", "preview", mcp_url, "--port", str(self.port),
                        "--widget-port", str(self.widget_port)]
        self.env = server_env({"RINGFENCE_PREVIEW_TOKEN": token} if token else None)
        self.process: subprocess.Popen[str] | None = None
        self.log_path: Path | None = None

    def start(self, log_dir: Path, timeout: float = 20) -> PreviewProcess:
        self.log_path = log_dir / f"preview-{self.port}.log"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(self.command, cwd=REPO, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ringfence preview exited early:\n{self.logs()}")
            try:
                if httpx.get(self.url, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"ringfence preview did not become ready:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def violations(self) -> list[dict[str, Any]]:
        """What GET /api/violations lists: the CSP violations the browser reported for the widgets."""
        response = httpx.get(f"{self.url}api/violations", timeout=5)
        assert response.status_code == 200, response.text
        return response.json()["violations"]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
