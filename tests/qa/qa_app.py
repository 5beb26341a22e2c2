"""A small app for `ringfence qa injections`: free text at the top, nested in objects and in arrays,
a field screening refuses free text in, confirmed tools (one on the page only), a tool with no text."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from ringfence import App, Scope

app = App("notes-qa", scopes=[Scope("notes:read", "Read notes"), Scope("notes:write", "Change notes")])
NOTES: list[str] = []


class Author(BaseModel):
    name: str
    email: str | None = None


class Note(BaseModel):
    title: str = Field(min_length=1, max_length=2000)
    author: Author | None = None
    pages: int = Field(ge=1, le=10)


@app.tool(effect="write", scopes=["notes:write"])
async def save_note(title: str, body: str = "") -> str:
    """Stores a note as it is: its text is data."""
    NOTES.append(title + body)
    return "saved"


@app.tool(effect="write", scopes=["notes:write"])
async def file_note(note: Note, folder: Literal["inbox", "archive"]) -> str:
    """Files a structured note."""
    return f"filed in {folder}"


@app.tool(effect="read", scopes=["notes:read"])
async def tag_search(tags: Annotated[list[str], Field(min_length=1, max_length=5)]) -> list[str]:
    """Notes with these tags."""
    return []


@app.tool(effect="read", scopes=["notes:read"])
async def lookup(code: str = Field(pattern="^[A-Z]{3}$")) -> str:
    """A three-letter code: screening refuses anything else."""
    return code


@app.tool(effect="destructive", scopes=["notes:write"])
async def delete_note(note_id: int = Field(ge=1), reason: str = "") -> str:
    """Deletes a note, once the user confirms."""
    return "deleted"


@app.tool(effect="destructive", scopes=["notes:write"], confirm="page")
async def purge_notes(confirmation_phrase: str) -> str:
    """Deletes every note; only the signed-in confirmation page can confirm it."""
    NOTES.clear()
    return "purged"


@app.tool(effect="read", scopes=["notes:read"])
async def count_notes() -> int:
    """How many notes there are."""
    return len(NOTES)
