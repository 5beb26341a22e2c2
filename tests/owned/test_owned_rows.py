"""Data scoped to the caller (#17): the rows of a table declared ``Owned`` are read and written only
within the caller's, by tools that forget the owner filter, through every ORM statement, on SQLite
and on PostgreSQL. (Raw SQL on PostgreSQL: test_row_security.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.owned.conftest import User, count_anonymously, serve_notes
from tests.support.http import tool_result
from tests.support.idp import TestIdentityProvider, new_subject
from tests.support.inprocess import Client


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def notes(request: pytest.FixtureRequest, idp: TestIdentityProvider,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """The careless notes app served on SQLite, or on PostgreSQL connected as the tests' superuser."""
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    with serve_notes(idp, tmp_path_factory.mktemp("owned"), url) as client:
        yield client


def test_a_select_without_owner_filter_finds_only_the_callers_rows(both: tuple[User, User, int]) -> None:
    alice, bob, _ = both
    assert alice.notes() == [("alice 1", alice.subject), ("alice 2", alice.subject)]
    assert bob.notes() == [("bob 1", bob.subject), ("bob 2", bob.subject)]


def test_a_new_row_is_stamped_with_the_callers_subject(alice: User) -> None:
    assert alice.call("add_note", text="mine")["owner"] == alice.subject
    assert alice.call("add_notes", rows=[{"text": "bulk"}]) == 1
    assert alice.notes() == [("mine", alice.subject), ("bulk", alice.subject)]


def test_session_get_of_another_owners_row_finds_nothing(both: tuple[User, User, int]) -> None:
    alice, bob, bobs = both
    assert alice.call("get_note", note_id=bobs) is None
    assert bob.call("get_note", note_id=bobs)["text"] == "bob 1"


def test_an_update_without_where_changes_only_the_callers_rows(both: tuple[User, User, int]) -> None:
    alice, bob, bobs = both
    assert alice.call("rewrite_all", text="changed") == 2
    alice.call("rewrite_by_id", note_id=bobs, text="changed")  # bulk UPDATE by primary key
    assert bob.notes() == [("bob 1", bob.subject), ("bob 2", bob.subject)]
    assert alice.notes() == [("changed", alice.subject), ("changed", alice.subject)]


def test_a_delete_without_where_deletes_only_the_callers_rows(both: tuple[User, User, int]) -> None:
    alice, bob, _ = both
    assert alice.call("remove_all") == 2
    assert alice.notes() == []
    assert bob.notes() == [("bob 1", bob.subject), ("bob 2", bob.subject)]


def test_writing_a_row_for_someone_else_is_refused_and_writes_nothing(both: tuple[User, User, int]) -> None:
    alice, bob, _ = both
    alice.refused("add_note", text="forged", owner=bob.subject)
    alice.refused("add_notes", rows=[{"text": "forged", "owner": bob.subject}])
    assert bob.notes() == [("bob 1", bob.subject), ("bob 2", bob.subject)]


def test_changing_a_rows_owner_is_refused(both: tuple[User, User, int]) -> None:
    alice, bob, _ = both
    mine = alice.call("add_note", text="keep")["id"]
    alice.refused("give_away", note_id=mine, owner=bob.subject)
    assert ("keep", alice.subject) in alice.notes()
    assert ("keep", alice.subject) not in bob.notes()


def test_a_refusal_shows_the_caller_nothing_of_the_other_owner(both: tuple[User, User, int]) -> None:
    alice, bob, _ = both
    text = alice.refused("add_note", text="forged", owner=bob.subject)
    assert bob.subject not in text and "owned" not in text


def test_an_anonymous_caller_finds_no_owned_rows_and_cannot_add_one(both: tuple[User, User, int],
                                                                   notes: Client) -> None:
    assert count_anonymously(notes)["orm"] == 0
    assert tool_result(notes.call_tool("add_anonymously", {"text": "nobody's"}))["isError"] is True


def test_a_caller_whose_subject_does_not_fit_the_owner_column_is_refused(
        notes: Client, idp: TestIdentityProvider) -> None:
    """A subject longer than the owner column (255): SQLite stored or matched it whole, PostgreSQL failed
    on its own; now the session refuses it, and the tool answers a clear failure (not an HTTP error)."""
    long = User(notes, idp, subject=new_subject() + "x" * 256)
    for tool, arguments in (("all_notes", {}), ("add_note", {"text": "mine"})):
        assert long.refused(tool, **arguments) == f"{tool} failed unexpectedly. The server has logged the details."
