"""`scripts/run-example` on a terminal (a pseudo-terminal here): it skips the install when nothing
changed, the log is readable text, the first user's password stands out, and a later start says how
to reset that password.

The script runs in a copy of the repository's layout whose `.venv/bin/ringfence` is the real one,
already installed, so the test never reinstalls the shared environment.
"""

from __future__ import annotations

import hashlib
import os
import pty
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.support.idp import free_port
from tests.support.serve import REPO, server_env

READY = "Application startup complete"


def checkout(tmp_path: Path) -> Path:
    """The script, pyproject.toml and the example app, with an installed `.venv` stamped as current."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(REPO / "scripts" / "run-example", root / "scripts" / "run-example")
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    (root / "examples").symlink_to(REPO / "examples")
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "ringfence").symlink_to(REPO / ".venv" / "bin" / "ringfence")
    python = subprocess.run(["python3", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    digest = hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()
    (root / ".venv" / ".run-example-installed").write_text(f"{python} {digest}\n")
    return root


def run_on_a_terminal(root: Path, timeout: float = 30) -> str:
    """Run the script with its output on a pseudo-terminal until the server is ready, then stop it;
    everything it wrote."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([str(root / "scripts" / "run-example"), "--port", str(free_port())], cwd=root,
                               env=server_env(), stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    output = b""
    try:
        deadline = time.monotonic() + timeout
        while READY.encode() not in output and time.monotonic() < deadline and process.poll() is None:
            if select.select([leader], [], [], 0.2)[0]:
                try:
                    output += os.read(leader, 65536)
                except OSError:  # the terminal closed: the process ended
                    break
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
        os.close(leader)
    text = output.decode(errors="replace").replace("\r\n", "\n")
    assert READY in text, text
    return text


def test_run_example_skips_the_install_and_the_first_password_stands_out(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    first = run_on_a_terminal(root)
    assert "installing" not in first  # nothing changed since the stamped install
    lines = first.split("\n")
    notice = next(number for number, line in enumerate(lines) if "created the first user: sign in as" in line)
    assert set(lines[notice - 1].removeprefix("\033[1m")) == {"="}  # framed by rules, in bold
    assert set(lines[notice + 1].removesuffix("\033[0m")) == {"="}
    assert lines[notice - 2] == "" and lines[notice + 2] == ""
    logged = [line for line in lines if " INFO " in line]
    assert logged and not any(line.lstrip().startswith("{") for line in lines)  # text, not JSON, on a terminal
    assert "Forgot the password" not in first

    second = run_on_a_terminal(root)
    assert "created the first user" not in second
    assert "Forgot the password of 'owner'? Set a new one with:" in second
    assert ".venv/bin/ringfence users passwd owner --data-dir ringfence-data" in second

