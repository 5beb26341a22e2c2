"""The careless notes app (tests/owned/apps.py) served in this process, and two of its callers; its
notes table in a started database, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from ringfence.store.database import Database
from tests.owned.apps import OwnedNote, owned_notes_app
from tests.support.http import result_text, tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.inprocess import Client, serve_in_process, token_for


@contextmanager
def serve_notes(idp: TestIdentityProvider, data_dir: Path, database_url: str | None = None) -> Iterator[Client]:
    """The notes app on SQLite in ``data_dir``, or on ``database_url``; a modern MCP client of it."""
    database = {} if database_url is None else {"database_url": database_url}
    with serve_in_process(owned_notes_app(), idp, data_dir, **database) as server:
        yield Client(server, "modern")


class User:
    """A caller with notes:write (a subject no other test uses), and what their calls answer."""

    def __init__(self, client: Client, idp: TestIdentityProvider, subject: str | None = None) -> None:
        self.client = client
        self.subject = subject or new_subject()
        self.token = token_for(idp, "notes:write", subject=self.subject)

    def result(self, tool: str, **arguments: Any) -> dict[str, Any]:
        return tool_result(self.client.call_tool(tool, arguments, token=self.token))

    def call(self, tool: str, **arguments: Any) -> Any:
        result = self.result(tool, **arguments)
        assert not result.get("isError"), f"{tool} failed: {result}"
        content = result["structuredContent"]
        return content["result"] if set(content) == {"result"} else content  # a dict is not wrapped

    def refused(self, tool: str, **arguments: Any) -> str:
        result = self.result(tool, **arguments)
        assert result.get("isError") is True, f"{tool} was not refused: {result}"
        return result_text(result)

    def notes(self) -> list[tuple[str, str]]:
        """``(text, owner)`` of every note this user's select without owner filter finds."""
        return [(note["text"], note["owner"]) for note in self.call("all_notes")]


@pytest.fixture
def alice(notes: Client, idp: TestIdentityProvider) -> User:
    return User(notes, idp)


@pytest.fixture
def bob(notes: Client, idp: TestIdentityProvider) -> User:
    return User(notes, idp)


@pytest.fixture
def both(alice: User, bob: User) -> tuple[User, User, int]:
    """Alice and Bob with two notes each; the id of Bob's first."""
    alice.call("add_note", text="alice 1")
    alice.call("add_note", text="alice 2")
    bobs = bob.call("add_note", text="bob 1")["id"]
    bob.call("add_note", text="bob 2")
    return alice, bob, bobs


def count_anonymously(client: Client) -> dict[str, int]:
    """What the public ``count_notes`` finds with no token: ``{"orm": n, "raw": n}``."""
    return tool_result(client.call_tool("count_notes"))["structuredContent"]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'ringfence.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A started database holding two notes of ``alice`` and one of ``bob``."""
    database = Database(database_url)
    await database.start()
    async with database.session(unsafe_all_owners=True) as session:
        await session.execute(delete(OwnedNote))  # the module's PostgreSQL database is shared
        session.add_all([OwnedNote(text="a1", owner="alice"), OwnedNote(text="a2", owner="alice"),
                         OwnedNote(text="b1", owner="bob")])
    yield database
    await database.close()


async def texts(database: Database, **scope: object) -> list[str]:
    async with database.session(**scope) as session:  # type: ignore[arg-type]
        return list(await session.scalars(select(OwnedNote.text).order_by(OwnedNote.text)))
