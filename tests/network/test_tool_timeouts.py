"""Every tool call runs within a deadline (issue #17 item 2): the tool's ``timeout=``, else the app's
``tool_timeout=``, else 30 s. Past it the call ends with a clear tool error and a ``tool.call`` record
whose outcome is ``timeout``; a preview counts against the same deadline. A plain (non-async) tool's
thread cannot be stopped: the call says it was abandoned, and abandoned threads are bounded."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ringfence import App, Scope
from ringfence.guards.wrapper import SYNC_TOOL_THREADS
from tests.support.http import result_text, tool_result
from tests.support.idp import TestIdentityProvider
from tests.support.inprocess import Client, InProcessServer, serve_in_process, token_for

SCOPE = "slow:use"
LONG = 30.0  # how long the slow tools would run if nothing stopped them
RAN: list[str] = []
RELEASE = threading.Event()  # lets the stuck tool's threads end


def slow_app() -> App:
    app = App("slow", scopes=[Scope(SCOPE, "Use the slow tools")], tool_timeout=0.3)

    @app.tool(effect="read", scopes=[SCOPE], timeout=0.2)
    async def sleepy() -> str:
        """Sleeps longer than it may."""
        await asyncio.sleep(LONG)
        return "woke up"

    @app.tool(effect="read", scopes=[SCOPE])
    async def sleepy_by_default() -> str:
        """Declares no timeout: the app's applies."""
        await asyncio.sleep(LONG)
        return "woke up"

    @app.tool(effect="read", scopes=[SCOPE], timeout=0.2)
    def sleepy_sync() -> str:
        """A plain function: its thread is left to finish, the call is not."""
        time.sleep(2)
        return "woke up"

    @app.tool(effect="read", scopes=[SCOPE], timeout=0.05)
    def stuck_sync() -> str:
        """A plain function that runs until the test lets it end."""
        RELEASE.wait()
        return "released"

    @app.tool(effect="read", scopes=[SCOPE], timeout=5)
    def quick_sync() -> str:
        """A plain function well within its time."""
        return "done"

    @app.tool(effect="write", scopes=[SCOPE], timeout=0.2)
    def slow_sync_write() -> str:
        """Changes something in a thread, slowly."""
        time.sleep(1)
        return "written"

    @app.tool(effect="write", scopes=[SCOPE], timeout=0.2)
    async def slow_write() -> str:
        """Changes something, slowly."""
        await asyncio.sleep(LONG)
        return "written"

    @app.tool(effect="read", scopes=[SCOPE], timeout=5)
    async def quick() -> str:
        """Well within its time."""
        return "done"

    @app.tool(effect="read", scopes=[SCOPE], timeout=5)
    async def own_timeout() -> str:
        """Raises a TimeoutError of its own: not the call's deadline."""
        raise TimeoutError("the tool's own wait")

    async def slow_preview(note: str) -> str:
        await asyncio.sleep(LONG)
        return f"delete {note}"

    @app.tool(effect="destructive", scopes=[SCOPE], preview=slow_preview, timeout=0.2)
    async def delete_note(note: str) -> str:
        """Deletes a note, after a preview that never ends."""
        RAN.append("delete_note")
        return "deleted"

    return app


@pytest.fixture(scope="module")
def server(idp: TestIdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    with serve_in_process(slow_app(), idp, tmp_path_factory.mktemp("slow")) as served:
        yield served


@pytest.fixture(scope="module")
def token(idp: TestIdentityProvider) -> str:
    return token_for(idp, SCOPE)


def call(server: InProcessServer, token: str, tool: str) -> dict[str, Any]:
    response = Client(server, "modern").call_tool(tool, {}, token=token)
    assert response.status_code == 200, response.text
    return tool_result(response)


@pytest.mark.parametrize(("tool", "seconds"), [("sleepy", "0.2"), ("sleepy_by_default", "0.3")])
def test_tool_running_past_its_timeout_ends_with_a_tool_error_and_a_timeout_record(
        server: InProcessServer, token: str, tool: str, seconds: str) -> None:
    result = call(server, token, tool)
    assert result["isError"] is True
    assert result_text(result) == f"{tool} took longer than {seconds} s and was stopped."
    assert server.audit(tool=tool, kind="tool.call") == [("tool.call", "timeout")]


def test_plain_tool_past_its_timeout_is_said_to_be_abandoned_not_stopped(server: InProcessServer,
                                                                         token: str) -> None:
    """A thread cannot be stopped: the answer must not claim it was."""
    result = call(server, token, "sleepy_sync")
    assert result["isError"] is True
    assert result_text(result) == "sleepy_sync was abandoned past its 0.2 s limit; it may still complete."
    assert server.audit(tool="sleepy_sync", kind="tool.call") == [("tool.call", "timeout")]


def test_plain_write_abandoned_past_its_timeout_says_it_may_have_changed_something(server: InProcessServer,
                                                                                   token: str) -> None:
    result = call(server, token, "slow_sync_write")
    assert result_text(result) == ("slow_sync_write was abandoned past its 0.2 s limit; it may still complete. "
                                   "Some of its changes may have been made: check before repeating it.")


def test_abandoned_threads_are_bounded_and_free_their_slot_only_when_they_end(server: InProcessServer,
                                                                              token: str) -> None:
    """Each late plain call leaves a thread running; past SYNC_TOOL_THREADS of them the next plain call is
    refused (outcome busy) instead of starting yet another thread, until the threads actually end."""
    answers = [result_text(call(server, token, "stuck_sync")) for _ in range(SYNC_TOOL_THREADS + 1)]
    try:
        assert answers[0] == "stuck_sync was abandoned past its 0.05 s limit; it may still complete."
        assert answers[-1] == ("stuck_sync was not run: the server is busy with earlier calls that are still "
                               "running. Try again shortly.")
        assert result_text(call(server, token, "quick_sync")) == answers[-1].replace("stuck_sync", "quick_sync")
        assert sum(thread.name == "ringfence-tool" for thread in threading.enumerate()) <= SYNC_TOOL_THREADS
        assert server.audit(tool="quick_sync", kind="tool.call") == [("tool.call", "busy")]
    finally:
        RELEASE.set()
        for thread in threading.enumerate():
            if thread.name == "ringfence-tool":
                thread.join()
    assert result_text(call(server, token, "quick_sync")) == "done"


def test_write_stopped_at_its_timeout_says_it_may_have_changed_something(server: InProcessServer,
                                                                          token: str) -> None:
    result = call(server, token, "slow_write")
    assert result_text(result) == ("slow_write took longer than 0.2 s and was stopped. Some of its changes may "
                                   "have been made: check before repeating it.")
    assert server.audit(tool="slow_write", kind="tool.call") == [("tool.call", "timeout")]


def test_tool_within_its_timeout_answers(server: InProcessServer, token: str) -> None:
    result = call(server, token, "quick")
    assert result["isError"] is False and result_text(result) == "done"
    assert server.audit(tool="quick", kind="tool.call") == [("tool.call", "ok")]


def test_a_timeout_error_the_tool_raises_itself_is_a_failure_not_the_deadline(server: InProcessServer,
                                                                               token: str) -> None:
    result = call(server, token, "own_timeout")
    assert result_text(result) == "own_timeout failed unexpectedly. The server has logged the details."
    assert server.audit(tool="own_timeout", kind="tool.call") == [("tool.call", "failed")]


def test_preview_running_past_the_timeout_stops_the_call_before_the_tool_runs(server: InProcessServer,
                                                                              token: str) -> None:
    response = Client(server, "modern").call_tool("delete_note", {"note": "n1"}, token=token)
    result = tool_result(response)
    assert result_text(result) == "delete_note took longer than 0.2 s and was stopped."
    assert RAN == []
    assert server.audit(tool="delete_note", kind="tool.call") == [("tool.call", "timeout")]
