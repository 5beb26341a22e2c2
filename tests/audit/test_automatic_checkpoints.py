"""A real `ringfence serve` signs audit checkpoints by itself, every N records or M seconds (both
configurable), so the tail someone with write access to the database could cut unnoticed is
bounded; `ringfence audit verify` says how many records are past the last checkpoint and its age."""

from __future__ import annotations

import re
import time
from pathlib import Path

from ringfence.audit.checkpoints import CheckpointFile
from tests.conftest import external_idp_args
from tests.support.idp import TestIdentityProvider
from tests.support.oauth import ringfence_cli
from tests.support.serve import CONTACTS_APP, ServeProcess

SUMMARY = re.compile(r"audit log intact: records #1 to #(\d+); last signed checkpoint at #(\d+) "
                     r"\(\d{4}-[^,]+, (\d+) s ago\)")
UNSIGNED = re.compile(r"audit log intact: records #1 to #(\d+); no signed checkpoint yet")


def start(idp: TestIdentityProvider, data: Path, *, records: int, seconds: int) -> ServeProcess:
    args, env = external_idp_args(idp)
    env |= {"RINGFENCE_AUDIT_CHECKPOINT_RECORDS": str(records), "RINGFENCE_AUDIT_CHECKPOINT_SECONDS": str(seconds)}
    return ServeProcess(CONTACTS_APP, *args, "--data-dir", str(data), env=env).start(data)


def calls(server: ServeProcess, idp: TestIdentityProvider, count: int) -> None:
    """``count`` tool calls, each recorded as one audit record."""
    token = idp.token(server.mcp_url, sub="auditor", scope="contacts:read")
    for _ in range(count):
        assert server.call_tool("search_contacts", {"query": "x"}, token=token).status_code == 200


def verified(data: Path) -> tuple[int, int, int]:
    """``audit verify`` while the server runs: (last record, last signed checkpoint, its age in seconds);
    (last record, 0, 0) while nothing is signed yet."""
    done = ringfence_cli("audit", "verify", "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    if unsigned := UNSIGNED.match(done.stdout):
        return int(unsigned.group(1)), 0, 0
    match = SUMMARY.match(done.stdout)
    assert match is not None, done.stdout
    last, signed, age = map(int, match.groups())
    return last, signed, age


def signed_by_then(data: Path, seq: int) -> tuple[int, int, int]:
    """``verified`` once the schedule, which signs in the background, has signed record ``seq`` (at most 10 s)."""
    deadline = time.monotonic() + 10
    while (state := verified(data))[1] < seq and time.monotonic() < deadline:
        time.sleep(0.2)
    return state


def test_the_server_signs_a_checkpoint_every_n_records(idp: TestIdentityProvider, tmp_path: Path) -> None:
    server = start(idp, tmp_path, records=3, seconds=3600)
    try:
        calls(server, idp, 3)
        assert signed_by_then(tmp_path, 3)[:2] == (3, 3)
        calls(server, idp, 3)  # #4 and #5 are not enough for another; #6 is
        last, signed, age = signed_by_then(tmp_path, 6)
        assert (last, signed) == (6, 6) and age < 60
        calls(server, idp, 1)
    finally:
        server.stop()
    # Each checkpoint waited for the next call, so none could sign a later record than its turn's:
    # #3 and #6 as they were written, #7 (1 < 3) only as the server stopped.
    assert [checkpoint.seq for checkpoint in CheckpointFile(tmp_path).read()] == [3, 6, 7]


def test_the_server_signs_the_tail_after_m_seconds(idp: TestIdentityProvider, tmp_path: Path) -> None:
    server = start(idp, tmp_path, records=1000, seconds=1)
    try:
        calls(server, idp, 2)
        state = signed_by_then(tmp_path, 2)
    finally:
        server.stop()
    assert state[:2] == (2, 2)  # both records covered within the interval, though far fewer than 1000


def test_stopping_the_server_signs_what_is_left(idp: TestIdentityProvider, tmp_path: Path) -> None:
    server = start(idp, tmp_path, records=1000, seconds=3600)
    try:
        calls(server, idp, 4)
    finally:
        server.stop()
    done = ringfence_cli("audit", "verify", "--data-dir", str(tmp_path))
    assert done.returncode == 0 and done.stdout.endswith("covers them all\n"), done.stdout
