"""Many short `ringfence` command runs for the price of one interpreter start.

Each `python -m ringfence ...` spends ~2.5 s CPU importing (mcp, authlib, SQLAlchemy) before it
can refuse a bad option. Here one helper process does those imports once, then forks a child per
run: every child is a real process running ``python -m ringfence``'s ``__main__`` with its own
argv, environment, working directory, stdout/stderr and exit status, handled as the interpreter
would (an uncaught exception prints its traceback and exits 1).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.serve import REPO, server_env

_FORK_RUNNER = r'''
import json, os, runpy, signal, sys, time, traceback
import ringfence.cli.main, ringfence.server  # the slow imports, paid once

runs, folder = json.loads(sys.stdin.read()), sys.argv[1]
children = {}
for name, run in runs.items():
    pid = os.fork()
    if pid == 0:
        for fd, stream in ((1, "stdout"), (2, "stderr")):
            os.dup2(os.open(os.path.join(folder, f"{name}.{stream}"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        os.chdir(run["cwd"])
        os.environ.clear()
        os.environ.update(run["env"])
        sys.argv = ["ringfence", *run["args"]]  # run_module replaces argv[0] with __main__.py
        try:
            runpy.run_module("ringfence", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            if exit_.code is not None and not isinstance(exit_.code, int):
                print(exit_.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    children[pid] = name
codes, deadline = {}, time.monotonic() + float(sys.argv[2])
while children and time.monotonic() < deadline:
    pid, status = os.waitpid(-1, os.WNOHANG)
    if pid:
        codes[children.pop(pid)] = os.waitstatus_to_exitcode(status)
    else:
        time.sleep(0.02)
for pid, name in children.items():  # still running: it did not refuse to start
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    codes[name] = None
print(json.dumps(codes))
'''


@dataclass
class Outcome:
    returncode: int | None  # None: still running at the deadline (it did not refuse to start)
    stdout: str
    stderr: str


def run_ringfence_many(runs: dict[str, tuple[list[str], dict[str, str]]], folder: Path, *,
                       deadline: float = 30) -> dict[str, Outcome]:
    """``python -m ringfence ARGS`` for each named run (args, extra environment), all at once; their outcomes.

    A run still going after ``deadline`` seconds is killed and reported with ``returncode=None``.
    """
    payload = {name: {"args": args, "env": server_env(env), "cwd": str(REPO)} for name, (args, env) in runs.items()}
    runner = subprocess.run([sys.executable, "-c", _FORK_RUNNER, str(folder), str(deadline)],
                            input=json.dumps(payload), capture_output=True, text=True, cwd=REPO, env=server_env(),
                            timeout=deadline + 60)
    assert runner.returncode == 0, runner.stderr
    codes = json.loads(runner.stdout.strip().splitlines()[-1])
    return {
        name: Outcome(codes[name], (folder / f"{name}.stdout").read_text(), (folder / f"{name}.stderr").read_text())
        for name in runs
    }
