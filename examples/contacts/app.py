"""The reference app: a small contacts book that holds personal data.

Run it with ``ringfence serve examples/contacts/app.py``. It uses only ringfence's public API.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from sqlalchemy import String, delete, func, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from ringfence import App, Model, Owned, Scope, ToolError

app = App(
    "contacts",
    title="Contacts",
    instructions="A private contacts book. Each user sees only their own contacts.",
    privacy_policy_url="https://contacts.example.com/privacy",
    widget_domain="https://contacts.example.com",
    scopes=[
        Scope("contacts:read", "See your contacts"),
        Scope("contacts:write", "Add, change and delete your contacts", implies=["contacts:read"]),
    ],
)


# The widget ChatGPT (and any MCP Apps host) shows search results in. It loads nothing from other
# sites, so its CSP allows no domain; it may call search_contacts again from its search box.
app.widget(
    "contact-list",
    html=Path(__file__).parent / "widgets" / "contact_list.html",
    description="Shows the contacts a search found: each one's name, e-mail address and phone number.",
    calls=["search_contacts"],
    shows=["personal", "contact"],
)


class ContactRow(Model, Owned):
    """One contact of one user: ``Owned`` adds the ``owner`` column, and every session reads and
    writes only the caller's rows (on PostgreSQL, row-level security enforces it too)."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))


class Contact(BaseModel):
    id: int
    name: str
    email: str | None = None
    phone: str | None = None


class AppInfo(BaseModel):
    name: str
    version: str
    description: str


# Ids are SQL INTEGERs (32 bits on PostgreSQL): a larger one is refused as a bad argument, not
# handed to the database to overflow.
MAX_ID = 2**31 - 1


def _contact(row: ContactRow) -> Contact:
    return Contact(id=row.id, name=row.name, email=row.email, phone=row.phone)


@app.tool(effect="read", returns=["public"])
async def app_info() -> AppInfo:
    """Describe this app and what it can do."""
    return AppInfo(name=app.title, version=app.version, description="Search, add and delete your own contacts.")


@app.tool(effect="read", scopes=["contacts:read"], returns=["personal", "contact"], widget="contact-list")
async def search_contacts(query: str = Field(max_length=200)) -> list[Contact]:
    """Find your contacts whose name or e-mail contains the query (case-insensitive)."""
    pattern = f"%{query.lower()}%"
    async with app.database.session() as session:  # the caller's contacts only
        rows = await session.scalars(
            select(ContactRow)
            .where(or_(func.lower(ContactRow.name).like(pattern), func.lower(ContactRow.email).like(pattern)))
            .order_by(ContactRow.name)
            .limit(50)
        )
        return [_contact(row) for row in rows]


@app.tool(effect="write", scopes=["contacts:write"], returns=["personal", "contact"])
async def add_contact(
    name: str = Field(min_length=1, max_length=200),
    email: str | None = Field(default=None, max_length=320),
    phone: str | None = Field(default=None, max_length=40),
) -> Contact:
    """Add a contact to your contacts book."""
    row = ContactRow(name=name.strip(), email=email, phone=phone)  # owned by the caller
    async with app.database.session() as session:
        session.add(row)
        await session.flush()
        return _contact(row)


async def describe_deletion(contact_id: int) -> str:
    """What delete_contact would do, for the user's confirmation."""
    async with app.database.session() as session:
        row = await session.get(ContactRow, contact_id)  # None if it is not the caller's
    if row is None:
        return f"delete contact {contact_id} (you have no contact with that id)"
    email = f" <{row.email}>" if row.email else ""
    return f"delete your contact {row.name}{email} (id {contact_id}); this cannot be undone"


@app.tool(effect="destructive", scopes=["contacts:write"], preview=describe_deletion)
async def delete_contact(contact_id: int = Field(ge=1, le=MAX_ID)) -> str:
    """Delete one of your contacts. It cannot be undone; the user confirms each deletion."""
    async with app.database.session() as session:
        row = await session.get(ContactRow, contact_id)
        if row is None:
            raise ToolError(f"You have no contact with id {contact_id}.")
        await session.delete(row)
    return f"Deleted contact {contact_id}."


# The user's own data: what `ringfence user delete|export`, the account page and the disclosure reach.
# These hooks run outside any tool call, so they name whose contacts they work on.


async def export_contacts(subject: str) -> list[Contact]:
    """Every contact the user owns."""
    async with app.database.session(owner=subject) as session:
        rows = await session.scalars(select(ContactRow).order_by(ContactRow.id))
        return [_contact(row) for row in rows]


async def delete_contacts(subject: str) -> int:
    """Delete every contact the user owns; how many."""
    async with app.database.session(owner=subject) as session:
        result = await session.execute(delete(ContactRow))
        return result.rowcount


app.personal_data(
    "contacts",
    description="The contacts you add: each one's name, e-mail address and phone number.",
    data_classes=["personal", "contact"],
    export=export_contacts,
    delete=delete_contacts,
)
