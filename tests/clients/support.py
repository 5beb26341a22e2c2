"""What the client tests share: the person who keeps the consent page's ticked boxes, Node clients, and a
"browser" that clients open through ``BROWSER``.

The Node packages come from ``tests/clients/node/package-lock.json``, installed by ``npm ci`` in
scripts/test; nothing is downloaded while the tests run. When they are missing the tests fail with
the command to run (they never skip).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.oauth import LOOPBACK_REDIRECT, BrowserLikeUser, hidden_fields
from tests.support.serve import REPO, server_env

NODE_DIR = REPO / "tests" / "clients" / "node"
NODE_INSTALL = "npm ci --prefix tests/clients/node --no-audit --no-fund"
_TICKED = re.compile(r'<input type="checkbox"[^>]* name="([^"]+)" value="([^"]*)" checked>')


def ticked_boxes(page: str) -> dict[str, str]:
    """The checkboxes a page shows ticked: what a browser posts when the person leaves them."""
    return dict(_TICKED.findall(page))


class KeepsTickedUser(BrowserLikeUser):
    """A person who presses Allow leaving the consent page as it is, ticked boxes included (a browser
    posts them; :class:`BrowserLikeUser` posts the hidden fields only: a person who unticked them)."""

    def answer_consent(self, page: httpx.Response, decision: str | None = None) -> httpx.Response:
        self.consent_pages.append(page)
        fields = {**hidden_fields(page.text), **ticked_boxes(page.text), "decision": decision or self.decision}
        return self.http.post("/authorize", data=fields)


def node_package(*parts: str) -> Path:
    """A file of an installed Node package; fails the test, naming the install command, when missing."""
    if shutil.which("node") is None:
        pytest.fail("the Node client tests need Node.js 20 or later on PATH", pytrace=False)
    path = NODE_DIR.joinpath("node_modules", *parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: run `{NODE_INSTALL}` (scripts/test does)", pytrace=False)
    return path


@dataclass
class NodeRun:
    """What a Node client printed (one JSON object a line), and its exit."""

    events: list[dict[str, Any]] = field(default_factory=list)
    returncode: int | None = None
    stderr: str = ""

    def step(self, name: str) -> dict[str, Any]:
        [found] = [event for event in self.events if event.get("step") == name]
        return found

    def of(self, key: str) -> list[Any]:
        return [event[key] for event in self.events if key in event]


def run_node_client(script: str, *args: str, user: BrowserLikeUser, timeout: float = 90) -> NodeRun:
    """``node SCRIPT ARGS...`` in tests/clients/node: each ``{"authorize": url}`` it prints is answered on
    its stdin with the redirect's query, after ``user`` signed in and consented at ``url``."""
    node_package("@modelcontextprotocol", "sdk", "package.json")
    process = subprocess.Popen(["node", script, *args], cwd=NODE_DIR, env=server_env(), text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    run = NodeRun()
    try:
        assert process.stdout is not None and process.stdin is not None
        for line in process.stdout:
            event = json.loads(line)
            run.events.append(event)
            if "authorize" in event:
                process.stdin.write(json.dumps(user.authorization_response(event["authorize"])) + "\n")
                process.stdin.flush()
        run.returncode = process.wait()
        run.stderr = process.stderr.read() if process.stderr else ""
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert run.returncode == 0, f"{script} exited with {run.returncode}:\n{run.stderr}\n{run.events}"
    return run


URLS_FILE = "browser-urls.txt"
BROWSER_SCRIPT = '#!/bin/sh\nprintf "%s\\n" "$1" >> "{urls}"\n'


def browser_env(folder: Path) -> dict[str, str]:
    """The environment of a client that opens "the browser" through ``BROWSER`` (Python's webbrowser,
    Node's ``open``, xdg-open): a script that writes the URL to a file in ``folder``, no display."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "browser.sh"
    script.write_text(BROWSER_SCRIPT.format(urls=folder / URLS_FILE))
    script.chmod(0o755)
    env = {**server_env(), "BROWSER": str(script)}
    env.pop("DISPLAY", None)
    return env


class BrowserAtTheUrlFile:
    """Watches the file ``BROWSER`` writes; each new URL is one authorization the person completes,
    their browser then landing on the client's redirect URI."""

    def __init__(self, folder: Path, user: BrowserLikeUser) -> None:
        self.urls, self.user = folder / URLS_FILE, user
        self.seen: list[str] = []
        self.callbacks: list[httpx.Response] = []
        self.failures: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> BrowserAtTheUrlFile:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            lines = self.urls.read_text().splitlines() if self.urls.exists() else []
            for url in lines[len(self.seen):]:
                self.seen.append(url)
                try:
                    answer = self.user.authorize(url)
                    assert answer.status_code == 302, answer.text[:300]
                    self.callbacks.append(httpx.get(answer.headers["location"], timeout=10))
                except BaseException as failure:  # reported by the test, not lost in the thread
                    self.failures.append(failure)


REDIRECT_URI = LOOPBACK_REDIRECT  # nothing listens there: the test hands the code to the client itself
