"""Statements the owner criteria cannot reach (#17 review): Core statements on an owned ``Table``
with no ORM entity of it, upserts, a connection in AUTOCOMMIT, raw SQL before start-up. Each is
refused in a session scoped to one owner (or to nobody), on SQLite and on PostgreSQL alike, and
allowed where the scope is every owner."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import column, delete, exists, func, insert, select, table, text, union, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased

from ringfence.store.database import Database
from ringfence.store.owned import OwnershipError
from tests.owned.apps import OwnedNote
from tests.owned.conftest import texts

NOTES = OwnedNote.__table__
EVERY_NOTE = ["a1", "a2", "b1"]


async def bobs_id(database: Database) -> int:
    async with database.session(owner="bob") as session:
        return (await session.scalars(select(OwnedNote.id))).one()


@pytest.mark.anyio
@pytest.mark.parametrize("statement", [
    select(NOTES), select(NOTES.c.text), select(func.count()).select_from(select(NOTES.c.id).subquery()),
    delete(NOTES), update(NOTES).values(text="changed"), insert(NOTES).values(text="forged", owner="bob"),
], ids=["select", "select-column", "subquery", "delete", "update", "insert"])
async def test_a_core_statement_on_the_owned_table_without_its_model_is_refused(
        database: Database, statement: Any) -> None:
    """SQLite ran each of them over every owner's rows: the owner criteria join ORM entities only."""
    with pytest.raises(OwnershipError, match="through its model"):
        async with database.session(owner="alice") as session:
            await session.execute(statement)
    assert await texts(database, unsafe_all_owners=True) == EVERY_NOTE


@pytest.mark.anyio
async def test_a_core_insert_with_rows_as_parameters_is_refused_too(database: Database) -> None:
    with pytest.raises(OwnershipError):
        async with database.session(owner="alice") as session:
            await session.execute(insert(NOTES), [{"text": "forged", "owner": "bob"}])
    assert await texts(database, owner="bob") == ["b1"]


@pytest.mark.anyio
async def test_a_session_over_every_owner_may_use_the_table(database: Database) -> None:
    async with database.session(unsafe_all_owners=True) as session:
        assert len((await session.execute(select(NOTES))).all()) == 3


@pytest.mark.anyio
@pytest.mark.parametrize("conflict", ["update", "nothing"])
async def test_an_upsert_on_an_owned_table_is_refused(database: Database, conflict: str) -> None:
    """ON CONFLICT DO UPDATE stamped the new row with Alice but rewrote Bob's existing one (SQLite)."""
    insert_for = postgres_insert if database.url.get_backend_name() == "postgresql" else sqlite_insert
    upsert = insert_for(OwnedNote)
    upsert = (upsert.on_conflict_do_update(index_elements=["id"], set_={"text": "upserted"}) if conflict == "update"
              else upsert.on_conflict_do_nothing())
    bob = await bobs_id(database)
    with pytest.raises(OwnershipError, match="upsert"):
        async with database.session(owner="alice") as session:
            await session.execute(upsert, [{"id": bob, "text": "x"}])
    assert await texts(database, unsafe_all_owners=True) == EVERY_NOTE


@pytest.mark.anyio
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_session_in_autocommit_is_refused_on_postgresql(database: Database) -> None:
    """In AUTOCOMMIT the transaction-local owner and role switch were gone by the next statement: raw
    SQL saw every owner's rows, as the superuser."""
    with pytest.raises(OwnershipError, match="AUTOCOMMIT"):
        async with database.session(owner="alice") as session:
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            await session.execute(text("SELECT text FROM owned_notes"))
    async with database.session(owner="alice") as session:  # the pooled connection carries nothing on
        assert list(await session.scalars(text("SELECT text FROM owned_notes ORDER BY text"))) == ["a1", "a2"]


@pytest.mark.anyio
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_raw_sql_before_start_is_refused_on_postgresql(database: Database) -> None:
    """Before start() no session switches role nor sets its owner: raw SQL saw every row. Fail closed:
    refused; the ORM statements, which the criteria scope, still work."""
    not_started = Database(database.url.render_as_string(hide_password=False))
    try:
        with pytest.raises(OwnershipError, match="start"):
            async with not_started.session(owner="alice") as session:
                await session.execute(text("SELECT text FROM owned_notes"))
        assert await texts(not_started, owner="alice") == ["a1", "a2"]
    finally:
        await not_started.close()


def test_an_ownership_error_is_no_os_error() -> None:
    """`except OSError` handlers (the CLI's "cannot use the database") must not take it for one."""
    assert not issubclass(OwnershipError, OSError)


ALIAS = NOTES.alias("other_notes")


@pytest.mark.anyio
@pytest.mark.parametrize("statement", [
    select(OwnedNote.text, select(func.count()).select_from(NOTES).scalar_subquery()),
    select(OwnedNote.text).where(exists(select(NOTES.c.id).where(NOTES.c.text == "b1"))),
    select(OwnedNote.text).where(OwnedNote.id.in_(select(NOTES.c.id))),
    union(select(OwnedNote.text), select(NOTES.c.text)),
    select(OwnedNote.text, ALIAS.c.text).join(ALIAS, ALIAS.c.id != OwnedNote.id),
    update(NOTES).where(OwnedNote.id > 0).values(text="changed"),
    delete(OwnedNote).where(OwnedNote.id.in_(select(NOTES.c.id).where(NOTES.c.text == "b1"))),
    select(column("text")).select_from(table("owned_notes")),
    delete(table("owned_notes")),
], ids=["scalar-subquery", "exists", "in-subquery", "union", "alias", "update-target", "delete-subquery",
        "lightweight-table", "lightweight-delete"])
async def test_the_bare_table_beside_its_model_is_refused_where_it_is_a_from_of_its_own(
        database: Database, statement: Any) -> None:
    """With the model elsewhere in the statement, these passed: on SQLite, Alice counted every owner's
    notes (3), tested Bob's texts with exists(), read them through an alias or a UNION, and changed
    every owner's notes; a lightweight table("owned_notes") read them all, like raw SQL. Each SELECT is
    judged on its own; a DML target must be the model."""
    with pytest.raises(OwnershipError, match="through its model"):
        async with database.session(owner="alice") as session:
            await session.execute(statement)
    assert await texts(database, unsafe_all_owners=True) == EVERY_NOTE


@pytest.mark.anyio
@pytest.mark.parametrize("statement", [
    select(OwnedNote.text, NOTES.c.owner),
    select(OwnedNote.text).where(NOTES.c.text != "none"),
    select(OwnedNote.text).select_from(NOTES),
    select(OwnedNote.text).where(exists(select(NOTES.c.id).where(NOTES.c.id == OwnedNote.id))),
    select(OwnedNote.text).where(OwnedNote.id.in_(select(OwnedNote.id).where(NOTES.c.text != "none"))),
    select(aliased(OwnedNote, name="mine").text),
], ids=["column", "where", "select-from", "correlated-exists", "subquery-with-model", "aliased-model"])
async def test_the_bare_table_as_the_from_of_its_model_is_scoped_and_allowed(
        database: Database, statement: Any) -> None:
    """Where the bare table is the same FROM as its model's (the ORM's own clauses name columns so),
    the owner criteria reach it: only Alice's notes come back."""
    async with database.session(owner="alice") as session:
        rows = (await session.execute(statement)).all()
    assert sorted(row[0] for row in rows) == ["a1", "a2"]


@pytest.mark.anyio
async def test_session_get_of_another_owners_row_finds_nothing(database: Database) -> None:
    async with database.session(owner="alice") as session:
        assert await session.get(OwnedNote, await bobs_id(database)) is None
