"""Durable storage: the reference app behaves the same on SQLite and PostgreSQL, and data outlives a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import external_idp_args
from tests.support.http import result_text, tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.serve import CONTACTS_APP, ServeProcess


class Backend:
    """One `ringfence serve` of the reference app on one database, restartable on the same data."""

    def __init__(self, idp: TestIdentityProvider, kind: str, logs: Path, database: list[str]) -> None:
        args, self.env = external_idp_args(idp)
        self.kind = kind
        self.data_dir = logs / "data"  # not created yet: ringfence creates it
        self.args = [*args, *database, "--data-dir", str(self.data_dir)]
        self.logs = logs
        self.server = ServeProcess(CONTACTS_APP, *self.args, env=self.env).start(logs)

    def restart(self) -> ServeProcess:
        self.server.stop()
        self.server = ServeProcess(CONTACTS_APP, *self.args, env=self.env).start(self.logs)
        return self.server


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, idp: TestIdentityProvider,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    logs = tmp_path_factory.mktemp(request.param)
    database = ["--database-url", request.getfixturevalue("postgres_url")] if request.param == "postgresql" else []
    running = Backend(idp, request.param, logs, database)
    yield running
    running.server.stop()


def call(server: ServeProcess, idp: TestIdentityProvider, subject: str, tool: str, **arguments: object) -> dict:
    token = idp.token(server.mcp_url, sub=subject, scope="contacts:write")
    return tool_result(server.call_tool(tool, arguments, token=token))


def test_sqlite_in_a_private_data_folder_unless_a_database_url_is_given(backend: Backend) -> None:
    """Default: SQLite in --data-dir, created with mode 0700 (personal data at rest); PostgreSQL: no SQLite file."""
    sqlite_file = backend.data_dir / "ringfence.db"
    if backend.kind == "sqlite":
        assert sqlite_file.is_file()
        assert backend.data_dir.stat().st_mode & 0o777 == 0o700
    else:
        assert not sqlite_file.exists()


def test_add_search_and_delete_a_contact(backend: Backend, idp: TestIdentityProvider) -> None:
    """The reference app's life cycle on this backend."""
    owner, server = new_subject(), backend.server
    added = call(server, idp, owner, "add_contact", name="Grace Hopper", email="grace@example.org")["structuredContent"]
    found = call(server, idp, owner, "search_contacts", query="GRACE")["structuredContent"]["result"]
    pending = call(server, idp, owner, "delete_contact", contact_id=added["id"])  # destructive: confirmed first
    handle = pending["_meta"]["ringfence/confirmation"]["handle"]
    deleted = call(server, idp, owner, "delete_contact", contact_id=added["id"], confirmation=handle)
    after = call(server, idp, owner, "search_contacts", query="grace")["structuredContent"]["result"]
    assert found == [added]
    assert deleted["isError"] is False
    assert after == []


def test_search_matches_name_or_email_case_insensitively(backend: Backend, idp: TestIdentityProvider) -> None:
    """The same query semantics on both engines (SQLite LIKE vs PostgreSQL LIKE differ on case)."""
    owner, server = new_subject(), backend.server
    call(server, idp, owner, "add_contact", name="Linus", email="TORVALDS@example.org")
    call(server, idp, owner, "add_contact", name="Margaret Hamilton")
    assert [c["name"] for c in call(server, idp, owner, "search_contacts", query="torvalds")
            ["structuredContent"]["result"]] == ["Linus"]
    assert [c["name"] for c in call(server, idp, owner, "search_contacts", query="HAMIL")
            ["structuredContent"]["result"]] == ["Margaret Hamilton"]


def test_users_are_isolated(backend: Backend, idp: TestIdentityProvider) -> None:
    """Rows are owned by ``sub``: another user neither finds nor deletes them."""
    owner, other, server = new_subject(), new_subject(), backend.server
    added = call(server, idp, owner, "add_contact", name="Isolated Ida")["structuredContent"]
    assert call(server, idp, other, "search_contacts", query="ida")["structuredContent"]["result"] == []
    pending = call(server, idp, other, "delete_contact", contact_id=added["id"])
    handle = pending["_meta"]["ringfence/confirmation"]["handle"]
    refused = call(server, idp, other, "delete_contact", contact_id=added["id"], confirmation=handle)
    assert refused["isError"] is True
    assert result_text(refused) == f"You have no contact with id {added['id']}."
    assert call(server, idp, owner, "search_contacts", query="ida")["structuredContent"]["result"] == [added]


def test_data_persists_across_a_restart(backend: Backend, idp: TestIdentityProvider) -> None:
    """A contact added before the server stops is found by the next server on the same database."""
    owner = new_subject()
    added = call(backend.server, idp, owner, "add_contact", name="Durable Dora")["structuredContent"]
    server = backend.restart()
    assert call(server, idp, owner, "search_contacts", query="dora")["structuredContent"]["result"] == [added]
