"""A tiny app for the multi-instance, load and fault tests: every write leaves a row a test can look for.

Each principal may make ``PER_PRINCIPAL`` calls a day and no other budget applies, so how many calls
pass is exact whatever the machine's speed (one more call's worth of budget takes 24 minutes).
"""

from __future__ import annotations

from pydantic import Field
from sqlalchemy import String, Text, func, select
from sqlalchemy.orm import Mapped, mapped_column

from ringfence import App, Model, Scope, current_principal
from ringfence.ops.ratelimit import Rate
from ringfence.ops.ratelimit_keys import RateLimits

PER_PRINCIPAL = 60

app = App(
    "notes",
    scopes=[
        Scope("notes:read", "See your notes"),
        Scope("notes:write", "Add notes", implies=["notes:read"]),
    ],
    rate_limits=RateLimits(per_principal=Rate(PER_PRINCIPAL, 86_400), per_address=None, per_client=None,
                           per_tool=None),
)


class NoteRow(Model):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(255), index=True)
    text: Mapped[str] = mapped_column(Text)


@app.tool(effect="write", scopes=["notes:write"], returns=["user_content"])
async def add_note(text: str = Field(min_length=1, max_length=200)) -> int:
    """Add a note; returns its number."""
    row = NoteRow(owner=current_principal().subject, text=text)
    async with app.database.session() as session:
        session.add(row)
        await session.flush()
        return row.id


@app.tool(effect="read", scopes=["notes:read"], returns=["public"])
async def count_notes() -> int:
    """How many notes you have."""
    async with app.database.session() as session:
        return await session.scalar(select(func.count()).where(NoteRow.owner == current_principal().subject)) or 0


@app.tool(effect="read", scopes=["notes:read"], returns=["public"])
async def ping() -> str:
    """Answer pong (touches no table of the app)."""
    return "pong"
