"""Owned rows outside a tool call (#17): the personal-data hooks and purges run with no caller, so a
session there works on nobody's rows (fail closed) unless the code names whose (``owner=``) or gives
the scope up by name (``unsafe_all_owners=True``). On SQLite and PostgreSQL (as the superuser)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, insert, select, text, update

from ringfence.store.database import Database
from ringfence.store.owned import OwnershipError
from tests.owned.apps import OwnedNote
from tests.owned.conftest import texts


@pytest.mark.anyio
async def test_a_session_outside_any_call_finds_no_owned_rows(database: Database) -> None:
    assert await texts(database) == []
    async with database.session() as session:
        assert (await session.execute(select(func.count()).select_from(OwnedNote))).scalar_one() == 0
        if database.url.get_backend_name() == "postgresql":  # raw SQL too, where RLS holds it
            assert (await session.execute(text("SELECT count(*) FROM owned_notes"))).scalar_one() == 0


@pytest.mark.anyio
async def test_a_session_outside_any_call_cannot_add_an_owned_row(database: Database) -> None:
    with pytest.raises(OwnershipError, match="has no owner"):
        async with database.session() as session:
            session.add(OwnedNote(text="nobody's"))
    assert await texts(database, unsafe_all_owners=True) == ["a1", "a2", "b1"]


@pytest.mark.anyio
async def test_a_session_for_a_named_owner_works_on_theirs_only(database: Database) -> None:
    assert await texts(database, owner="alice") == ["a1", "a2"]
    async with database.session(owner="bob") as session:
        session.add(OwnedNote(text="b2"))
    assert await texts(database, owner="bob") == ["b1", "b2"]


@pytest.mark.anyio
async def test_an_unsafe_all_owners_session_sees_everyone_but_must_name_each_new_rows_owner(
        database: Database) -> None:
    assert await texts(database, unsafe_all_owners=True) == ["a1", "a2", "b1"]
    with pytest.raises(OwnershipError, match="name their owner"):
        async with database.session(unsafe_all_owners=True) as session:
            session.add(OwnedNote(text="whose?"))


@pytest.mark.anyio
async def test_a_row_loaded_for_one_owner_cannot_join_another_owners_session(database: Database) -> None:
    """The identity map holds only the session owner's rows, so ``session.get`` cannot return another's."""
    async with database.session(owner="bob") as session:
        bobs = (await session.scalars(select(OwnedNote))).one()
    with pytest.raises(OwnershipError):
        async with database.session(owner="alice") as session:
            session.add(bobs)
    with pytest.raises(OwnershipError):
        async with database.session(owner="alice") as session:
            await session.merge(bobs, load=False)
    async with database.session(owner="alice") as session:
        assert await session.get(OwnedNote, bobs.id) is None


@pytest.mark.anyio
async def test_the_legacy_bulk_methods_which_skip_the_checks_are_refused_on_owned_tables(database: Database) -> None:
    for bulk in (lambda session: session.bulk_insert_mappings(OwnedNote, [{"text": "x", "owner": "bob"}]),
                 lambda session: session.bulk_save_objects([OwnedNote(text="x", owner="bob")])):
        with pytest.raises(OwnershipError, match="legacy bulk"):
            async with database.session(owner="alice") as session:
                await session.run_sync(bulk)
    assert await texts(database, owner="bob") == ["b1"]


@pytest.mark.anyio
async def test_orm_statements_that_write_the_owner_inline_are_refused(database: Database) -> None:
    """Rows inside an INSERT's VALUES cannot be checked one by one; an UPDATE never changes the owner."""
    for statement in (insert(OwnedNote).values(text="x", owner="bob"), insert(OwnedNote).values(text="x"),
                      update(OwnedNote).values(owner="bob")):
        with pytest.raises(OwnershipError):
            async with database.session(owner="alice") as session:
                await session.execute(statement)
    assert await texts(database, unsafe_all_owners=True) == ["a1", "a2", "b1"]
    assert await texts(database, owner="alice") == ["a1", "a2"]


@pytest.mark.parametrize("scope", [{"owner": ""}, {"owner": "x" * 256}, {"owner": "bob", "unsafe_all_owners": True}])
def test_an_owner_that_is_no_subject_or_two_scopes_at_once_are_refused(scope: dict[str, object]) -> None:
    database = Database("sqlite+aiosqlite:///:memory:")

    async def open_session() -> None:
        async with database.session(**scope):  # type: ignore[arg-type]
            pass

    with pytest.raises(ValueError, match="owner"):
        asyncio.run(open_session())
