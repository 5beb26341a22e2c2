"""The reference app's tools on a bare ``mcp`` MCPServer: same logic and storage, no ringfence layer.

The baseline for ``bench/tool_calls.py``. Tools, SQL, SQLite settings (ringfence's own pragma
function), the session-per-call pattern and the uvicorn settings are those of
``examples/contacts/app.py`` served by ``ringfence serve``; what is missing is everything
ringfence adds (Host/Origin check, token verification, scopes, rate limits, argument screening,
the tool wrapper, output guards, audit records, logging and metrics middleware). With no caller
identity, every call uses one fixed owner.

    python bench/calls/bare_contacts.py --port 8100 --data-dir /tmp/bare
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, Field
from sqlalchemy import String, event, func, or_, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.applications import Starlette
from starlette.routing import Route

# The same connection settings as ringfence's storage (WAL, synchronous=NORMAL, foreign keys), so
# that commits cost the same on both sides; the only thing borrowed from ringfence.
from ringfence.store.database import sqlite_pragmas

OWNER = "bench-owner"


class Base(DeclarativeBase):
    pass


class ContactRow(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(255), index=True)
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


def build(data_dir: Path) -> Starlette:
    """The ASGI app: MCPServer with the contacts tools, on SQLite in ``data_dir``."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = create_async_engine(f"sqlite+aiosqlite:///{(data_dir / 'bare.db').resolve()}", pool_pre_ping=True)
    event.listen(engine.sync_engine, "connect", sqlite_pragmas)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    server = MCPServer("contacts", title="Contacts", version="0.1.0",
                       instructions="A private contacts book. Each user sees only their own contacts.")

    def contact(row: ContactRow) -> Contact:
        return Contact(id=row.id, name=row.name, email=row.email, phone=row.phone)

    @server.tool()
    async def app_info() -> AppInfo:
        """Describe this app and what it can do."""
        return AppInfo(name="Contacts", version="0.1.0", description="Search, add and delete your own contacts.")

    @server.tool()
    async def search_contacts(query: str = Field(max_length=200)) -> list[Contact]:
        """Find your contacts whose name or e-mail contains the query (case-insensitive)."""
        pattern = f"%{query.lower()}%"
        async with sessions() as session, session.begin():
            rows = await session.scalars(
                select(ContactRow)
                .where(ContactRow.owner == OWNER)
                .where(or_(func.lower(ContactRow.name).like(pattern), func.lower(ContactRow.email).like(pattern)))
                .order_by(ContactRow.name)
                .limit(50)
            )
            return [contact(row) for row in rows]

    @server.tool()
    async def add_contact(
        name: str = Field(min_length=1, max_length=200),
        email: str | None = Field(default=None, max_length=320),
        phone: str | None = Field(default=None, max_length=40),
    ) -> Contact:
        """Add a contact to your contacts book."""
        row = ContactRow(owner=OWNER, name=name.strip(), email=email, phone=phone)
        async with sessions() as session, session.begin():
            session.add(row)
            await session.flush()
            return contact(row)

    sdk_app = server.streamable_http_app(streamable_http_path="/mcp")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        try:
            async with server.session_manager.run():
                yield
        finally:
            await engine.dispose()

    return Starlette(routes=[Route("/mcp", sdk_app)], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    # As `ringfence serve` does (cli.configure_logging, cli.run_server), so both pay for the same logging.
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    uvicorn.run(build(args.data_dir), host="127.0.0.1", port=args.port, log_level=args.log_level,
                server_header=False, proxy_headers=False, lifespan="on")


if __name__ == "__main__":
    main()
