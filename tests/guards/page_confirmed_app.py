"""A tiny app whose destructive tool is confirmed only on the signed-in confirmation page (``confirm="page"``)."""

from __future__ import annotations

from pydantic import Field
from sqlalchemy import String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from ringfence import App, Model, Scope, ToolError, current_principal

app = App(
    "vault",
    title="Vault",
    scopes=[
        Scope("vault:read", "See your notes"),
        Scope("vault:write", "Add and destroy your notes", implies=["vault:read"]),
    ],
)


class VaultNote(Model):
    __tablename__ = "vault_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(255), index=True)
    text: Mapped[str] = mapped_column(Text)


@app.tool(effect="write", scopes=["vault:write"], returns=["user_content"])
async def add_note(text: str = Field(min_length=1, max_length=200)) -> int:
    """Add a note; returns its number."""
    row = VaultNote(owner=current_principal().subject, text=text)
    async with app.database.session() as session:
        session.add(row)
        await session.flush()
        return row.id


@app.tool(effect="read", scopes=["vault:read"], returns=["user_content"])
async def list_notes() -> list[str]:
    """Your notes."""
    async with app.database.session() as session:
        rows = await session.scalars(select(VaultNote).where(VaultNote.owner == current_principal().subject))
        return [row.text for row in rows]


async def describe_destruction(note_id: int) -> str:
    return f"destroy note {note_id}"


@app.tool(effect="destructive", scopes=["vault:write"], preview=describe_destruction, confirm="page")
async def destroy_note(note_id: int) -> str:
    """Destroy one of your notes; only the confirmation page can confirm it."""
    async with app.database.session() as session:
        row = await session.get(VaultNote, note_id)
        if row is None or row.owner != current_principal().subject:
            raise ToolError(f"You have no note {note_id}.")
        await session.delete(row)
    return f"Destroyed note {note_id}."
