"""An app whose notes table is ``Owned`` and whose tools all forget to filter by owner, on purpose.

Each tool does what a careless author would: select every note, get one by id, update or delete
them all, insert with someone else's owner, or run raw SQL. The declaration must keep each of them
inside the caller's rows anyway.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, delete, func, insert, select, text, update
from sqlalchemy.orm import Mapped, mapped_column

from ringfence import App, Model, Owned, Scope


class OwnedNote(Model, Owned):
    __tablename__ = "owned_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(200))


def _note(note: OwnedNote) -> dict[str, Any]:
    return {"id": note.id, "text": note.text, "owner": note.owner}


def owned_notes_app() -> App:
    """A fresh declaration of the app (one per server: an app is served once at a time)."""
    app = App("owned-notes", scopes=[Scope("notes:read", "Read your notes"),
                                     Scope("notes:write", "Change your notes", implies=["notes:read"])])

    @app.tool(effect="write", scopes=["notes:write"])
    async def add_note(text: str, owner: str | None = None) -> dict[str, Any]:
        """Adds a note, for ``owner`` if given (someone else: must be refused)."""
        async with app.database.session() as session:
            note = OwnedNote(text=text, owner=owner)
            session.add(note)
            await session.flush()
            return _note(note)

    @app.tool(effect="write", scopes=["notes:write"])
    async def add_notes(rows: list[dict[str, str]]) -> int:
        """Adds notes with one ORM INSERT statement, the rows as parameters."""
        async with app.database.session() as session:
            await session.execute(insert(OwnedNote), rows)
            return len(rows)

    @app.tool(effect="read", scopes=["notes:read"])
    async def all_notes() -> list[dict[str, Any]]:
        """Every note: no owner filter."""
        async with app.database.session() as session:
            return [_note(note) for note in await session.scalars(select(OwnedNote).order_by(OwnedNote.id))]

    @app.tool(effect="read", scopes=["notes:read"])
    async def get_note(note_id: int) -> dict[str, Any] | None:
        """One note by id (``session.get``): no owner check."""
        async with app.database.session() as session:
            note = await session.get(OwnedNote, note_id)
            return None if note is None else _note(note)

    @app.tool(effect="write", scopes=["notes:write"])
    async def rewrite_all(text: str) -> int:
        """Rewrites every note (ORM UPDATE without WHERE); how many."""
        async with app.database.session() as session:
            return (await session.execute(update(OwnedNote).values(text=text))).rowcount

    @app.tool(effect="write", scopes=["notes:write"])
    async def rewrite_by_id(note_id: int, text: str) -> str:
        """Rewrites one note by primary key (ORM bulk UPDATE by primary key)."""
        async with app.database.session() as session:
            await session.execute(update(OwnedNote), [{"id": note_id, "text": text}])
            return "done"

    @app.tool(effect="write", scopes=["notes:write"])
    async def remove_all() -> int:
        """Deletes every note (ORM DELETE without WHERE); how many."""
        async with app.database.session() as session:
            return (await session.execute(delete(OwnedNote))).rowcount

    @app.tool(effect="write", scopes=["notes:write"])
    async def give_away(note_id: int, owner: str) -> str:
        """Hands one of the caller's notes to ``owner`` (must be refused)."""
        async with app.database.session() as session:
            note = await session.get(OwnedNote, note_id)
            if note is None:
                return "no such note"
            note.owner = owner
            return "given"

    @app.tool(effect="read", scopes=["notes:read"])
    async def raw_select() -> list[dict[str, Any]]:
        """Every note, in raw SQL."""
        async with app.database.session() as session:
            rows = await session.execute(text("SELECT id, text, owner FROM owned_notes ORDER BY id"))
            return [dict(row._mapping) for row in rows]

    @app.tool(effect="write", scopes=["notes:write"])
    async def raw_update(text_: str) -> int:
        """Rewrites every note in raw SQL; how many."""
        async with app.database.session() as session:
            return (await session.execute(text("UPDATE owned_notes SET text = :t"), {"t": text_})).rowcount

    @app.tool(effect="write", scopes=["notes:write"])
    async def raw_delete() -> int:
        """Deletes every note in raw SQL; how many."""
        async with app.database.session() as session:
            return (await session.execute(text("DELETE FROM owned_notes"))).rowcount

    @app.tool(effect="write", scopes=["notes:write"])
    async def raw_insert(text_: str, owner: str) -> str:
        """Adds a note for ``owner`` in raw SQL (someone else: PostgreSQL must refuse it)."""
        async with app.database.session() as session:
            await session.execute(text("INSERT INTO owned_notes (text, owner) VALUES (:t, :o)"),
                                  {"t": text_, "o": owner})
            return "added"

    @app.tool(effect="read")
    async def count_notes() -> dict[str, int]:
        """Public: how many notes an anonymous caller finds, through the ORM and in raw SQL."""
        async with app.database.session() as session:
            orm = (await session.execute(select(func.count()).select_from(OwnedNote))).scalar_one()
            raw = (await session.execute(text("SELECT count(*) FROM owned_notes"))).scalar_one()
            return {"orm": orm, "raw": raw}

    @app.tool(effect="write")
    async def add_anonymously(text: str) -> str:
        """Public: adds a note with no caller to own it (must be refused)."""
        async with app.database.session() as session:
            session.add(OwnedNote(text=text))
            return "added"

    return app


app = owned_notes_app()  # what `ringfence serve tests/owned/apps.py` serves
