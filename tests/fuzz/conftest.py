"""One server under fuzz for the whole suite, one wire to it, and the count of what was sent.

After every test, the server's log must show no 5xx and no traceback from what the test sent. After
the session, when every fuzz test ran and passed, at least ``MIN_REQUESTS`` must have been sent, and
in no area may more than ``MAX_THROTTLED`` of the answers be 429 (a fuzzer held back by rate limits
tests nothing behind them), and every tool of the app must have been reached by at least
``MIN_TOOL_CALLS`` fuzzed calls; the count per area and how each status answered it are printed in the
summary of every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuzz.target import FuzzTarget, start_target
from tests.fuzz.wire import MAX_THROTTLED, MIN_REQUESTS, MIN_TOOL_CALLS, Wire
from tests.support.oauth import server_errors

FUZZ_DIR = Path(__file__).parent
WIRE = pytest.StashKey[Wire]()
RAN = pytest.StashKey[set[str]]()


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    target = start_target(tmp_path_factory.mktemp("fuzz"))
    yield target
    target.server.stop_and_check()


@pytest.fixture(scope="session")
def wire(target: FuzzTarget, request: pytest.FixtureRequest) -> Iterator[Wire]:
    wire = Wire(target.base_url, target.secrets())
    request.config.stash[WIRE] = wire
    yield wire
    wire.close()
    if whole_suite_passed(request.session):
        assert wire.total >= MIN_REQUESTS, f"the fuzz suite sent {wire.total} requests, fewer than {MIN_REQUESTS}"
        throttled = {area: round(wire.statuses(area)[429] / count, 2) for area, count in wire.sent.items()
                     if wire.statuses(area)[429] > MAX_THROTTLED * count}
        assert throttled == {}, f"rate limits, not the endpoints, answered these shares of the fuzz: {throttled}"
        reached = target.tools_reached()
        seldom = {tool: reached[tool] for tool in target.tool_schemas if reached[tool] < MIN_TOOL_CALLS}
        assert seldom == {}, f"fuzzed calls seldom got past the gate to these tools: {seldom}"


@pytest.fixture(autouse=True)
def no_server_errors(target: FuzzTarget, request: pytest.FixtureRequest) -> Iterator[None]:
    """What the test sent made the server answer no 5xx and log no traceback."""
    start = len(target.server.logs())
    yield
    errors = server_errors(target.server.logs()[start:])
    assert errors == [], "\n".join(errors[:20])
    request.config.stash.setdefault(RAN, set()).add(request.node.nodeid)


def whole_suite_passed(session: pytest.Session) -> bool:
    """Every fuzz module was collected, and every fuzz test collected ran and passed."""
    items = [item for item in session.items if FUZZ_DIR in item.path.parents]
    modules = {item.path for item in items}
    ran = session.config.stash.get(RAN, set())
    return (modules == set(FUZZ_DIR.glob("test_*.py")) and session.testsfailed == 0
            and all(item.nodeid in ran for item in items))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    wire = config.stash.get(WIRE, None)
    if wire is None or not wire.total:
        return
    terminalreporter.write_line(f"fuzz: {wire.total:,} requests sent (area, requests, answers by status)")
    for area, count in sorted(wire.sent.items()):
        statuses = " ".join(f"{status}:{times}" for status, times in sorted(wire.statuses(area).items()))
        terminalreporter.write_line(f"  {area:<18} {count:>6,}  {statuses}")
