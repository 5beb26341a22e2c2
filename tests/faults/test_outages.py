"""Redis or PostgreSQL becoming unreachable fails closed and recovers by itself (issue #6, item 7).

The shared services are never stopped: ringfence reaches them through a loopback proxy the test
cuts (open connections reset, new ones refused) and restores. While cut, protected calls are refused
with a clear answer and no internals, the tool does not run (its note is never written, not even
later), and the other checks still refuse what they refused before. After the restore the same
process serves again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import external_idp_args
from tests.support.faults import TcpProxy
from tests.support.http import assert_no_internals, result_text, tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.instances import (
    NOTES_APP,
    REDIS_URL,
    answered_5xx,
    audit_verify,
    audited_calls,
    clear_rate_limits,
    notes,
)
from tests.support.serve import ServeProcess


class Notes:
    """One principal's calls to a notes server."""

    def __init__(self, server: ServeProcess, idp: TestIdentityProvider) -> None:
        self.server = server
        self.subject = new_subject()
        self.token = idp.token(server.mcp_url, sub=self.subject, scope="notes:write")
        self.reader = idp.token(server.mcp_url, sub=self.subject, scope="notes:read")
        self.forged = idp.token(server.mcp_url, sub=self.subject, scope="notes:write", key=idp.unpublished)

    def add(self, text: str, token: str | None = None):  # type: ignore[no-untyped-def]
        return self.server.call_tool("add_note", {"text": f"{self.subject}-{text}"}, token=token or self.token)

    def note(self, text: str) -> str:
        return f"{self.subject}-{text}"

    def assert_other_checks_still_refuse(self) -> None:
        """No check is skipped while a store is away: a bad signature is 401, a missing scope 403."""
        assert self.add("forged", token=self.forged).status_code == 401
        assert self.add("read-only", token=self.reader).status_code == 403
        assert self.server.call_tool("add_note", {"text": f"{self.subject}-anonymous"}).status_code == 401


# Redis -------------------------------------------------------------------------------------------


@pytest.fixture
def redis_proxy() -> Iterator[TcpProxy]:
    url = urlsplit(REDIS_URL)
    with TcpProxy([(url.hostname or "127.0.0.1", url.port or 6379)]) as proxy:
        yield proxy


def test_unreachable_redis_refuses_calls_with_503_and_recovers_without_restart(idp, tmp_path: Path, redis_proxy):
    clear_rate_limits()
    args, env = external_idp_args(idp, introspection=False)
    database = tmp_path / "data"
    server = ServeProcess(NOTES_APP, *args, "--data-dir", str(database), "--redis-url",
                          f"redis://{redis_proxy.address}{urlsplit(REDIS_URL).path}", env=env).start(tmp_path)
    try:
        person = Notes(server, idp)
        assert tool_result(person.add("before"))["isError"] is False
        assert redis_proxy.connections > 0  # the budgets really are checked through the proxy
        pid = server.process.pid if server.process else None

        redis_proxy.cut()
        refused = person.add("during")
        assert refused.status_code == 503  # fail closed: a budget that cannot be checked is no budget
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"] == "temporarily_unavailable"
        assert_no_internals(refused)
        person.assert_other_checks_still_refuse()

        redis_proxy.restore()
        assert tool_result(person.add("after"))["isError"] is False
        assert server.process is not None and server.process.pid == pid and server.process.poll() is None
    finally:
        server.stop()
    url = f"sqlite+aiosqlite:///{(database / 'ringfence.db').resolve()}"
    stored = notes(url)
    assert {person.note("before"), person.note("after")} <= stored and person.note("during") not in stored
    assert audited_calls(url, database)[person.subject] == 2
    assert set(answered_5xx(server.logs())) == {503}


# PostgreSQL --------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_unreachable_postgresql_refuses_calls_clearly_runs_nothing_and_recovers(idp, tmp_path: Path, postgres_url):
    """The tool cannot run and no call is answered as done without its audit record (fail closed)."""
    real = make_url(postgres_url)
    with TcpProxy([(real.host or "127.0.0.1", real.port or 5432)]) as proxy:
        through_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        args, env = external_idp_args(idp, introspection=False)
        data = tmp_path / "data"
        server = ServeProcess(NOTES_APP, *args, "--data-dir", str(data), "--database-url", through_proxy,
                              env=env).start(tmp_path)
        try:
            person = Notes(server, idp)
            assert tool_result(person.add("before"))["isError"] is False
            assert proxy.connections > 0
            pid = server.process.pid if server.process else None

            proxy.cut()
            for tool, answer in (("add_note", person.add("during")),
                                 ("ping", server.call_tool("ping", token=person.token)),  # no app table; the audit
                                 ("count_notes", server.call_tool("count_notes", token=person.token))):
                assert answer.status_code in (200, 503), answer.text
                assert_no_internals(answer)
                if answer.status_code == 200:
                    result = tool_result(answer)
                    text = result_text(result)  # the audit record cannot be written: the result is withheld
                    assert result["isError"] is True and "could not be recorded" in text and "pong" not in text
                    if tool == "add_note":  # a write whose start cannot be recorded is not even run
                        assert "was not run" in text
            person.assert_other_checks_still_refuse()

            proxy.restore()
            assert tool_result(person.add("after"))["isError"] is False
            assert tool_result(server.call_tool("count_notes", token=person.token))["structuredContent"] == {
                "result": 2}
            assert server.process is not None and server.process.pid == pid and server.process.poll() is None
        finally:
            server.stop()
    stored = notes(postgres_url)
    assert {person.note("before"), person.note("after")} <= stored and person.note("during") not in stored
    assert audited_calls(postgres_url, data)[person.subject] == 3  # before, after, and the count after
    assert audit_verify(postgres_url, data).startswith("audit log intact")
    assert set(answered_5xx(server.logs())) <= {503}
