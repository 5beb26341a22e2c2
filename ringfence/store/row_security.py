"""PostgreSQL row-level security on owned tables: the database itself keeps a session to its owner's rows.

At start-up each owned table gets ``ENABLE`` and ``FORCE ROW LEVEL SECURITY`` (FORCE: the table's
owner is held to it too) and the policy ``ringfence_owner``: a row is visible and writable when its
``owner`` is the transaction's ``ringfence.owner`` setting, or when ``ringfence.all_owners`` is on.
Each session transaction sets both with ``set_config(..., true)``: transaction-local, so a pooled
connection carries nothing into the next transaction, where an unset owner matches no row.

A superuser or a role with BYPASSRLS is never held to a policy, FORCE or not. Connected as one,
ringfence creates the role ``ringfence_app`` (NOLOGIN, no BYPASSRLS), grants it reading and writing
the app's tables and ringfence's, and switches each session transaction to it (``SET LOCAL ROLE``,
written ``set_config('role', ..., true)``). Where that cannot be done, start-up stops with one line.

Both live only as long as the transaction, so a session whose connection runs each statement in a
transaction of its own (``isolation_level="AUTOCOMMIT"``) would lose them at once: it is refused.
Until :meth:`~ringfence.store.database.Database.start` has put the tables under row-level security,
raw SQL (``text()``) in a session on PostgreSQL is refused while the app declares owned tables.

The settings guard against mistakes in the app's code (a forgotten ``WHERE``, raw SQL), not against
code that means harm: SQL run in the session can set them, or reset the role, itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Table, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from ringfence.config import ConfigError
from ringfence.store.owned import OWNER_COLUMN, OwnershipError, ScopedSession, scope_of

ROLE = "ringfence_app"
POLICY = "ringfence_owner"
OWNER_SETTING = "ringfence.owner"
ALL_OWNERS_SETTING = "ringfence.all_owners"
ROW_SECURITY_KEY = "ringfence.row_security"  # in ``Session.info``: the database's RowSecurity, if any
# An unset custom setting reads as NULL in a fresh connection but as '' after a transaction set it.
VISIBLE = (f"{{owner}} = nullif(current_setting('{OWNER_SETTING}', true), '') "
           f"OR current_setting('{ALL_OWNERS_SETTING}', true) = 'on'")
DML = ("SELECT", "INSERT", "UPDATE", "DELETE")


@dataclass(frozen=True)
class RowSecurity:
    """In force on this database: each session transaction sets its owner, and switches to ``role`` if any."""

    role: str | None

    def begin(self, connection: Connection, session: Session) -> None:
        if _autocommit(connection):
            raise OwnershipError("a session on owned tables cannot use isolation_level='AUTOCOMMIT': the owner "
                                 "and the role it sets last one transaction, and would not reach the next statement")
        scope = scope_of(session)
        settings = ("SELECT set_config(:owner_setting, :owner, true), set_config(:all_setting, :all_owners, true)"
                    + (", set_config('role', :role, true)" if self.role else ""))
        connection.execute(text(settings), {
            "owner_setting": OWNER_SETTING, "owner": scope.owner or "",
            "all_setting": ALL_OWNERS_SETTING, "all_owners": "on" if scope.all_owners else "off",
            **({"role": self.role} if self.role else {}),
        })


class NotStarted:
    """In ``Session.info`` of a PostgreSQL session opened before start-up while the app declares owned
    tables: row-level security may not be in force, so raw SQL is refused (only the ORM criteria hold)."""


def _autocommit(connection: Connection) -> bool:
    """Whether each statement on ``connection`` commits alone (the option, or the driver's own flag)."""
    if connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        return True
    return bool(getattr(connection.connection.dbapi_connection, "autocommit", False))


@event.listens_for(ScopedSession, "after_begin")
def _begin_scoped(session: Session, _transaction: SessionTransaction, connection: Connection) -> None:
    row_security = session.info.get(ROW_SECURITY_KEY)
    if isinstance(row_security, RowSecurity):
        row_security.begin(connection, session)


@event.listens_for(ScopedSession, "do_orm_execute")
def _refuse_raw_sql_before_start(state: ORMExecuteState) -> None:
    """Raw SQL is what only row-level security scopes: refused until start-up has put it in force."""
    if isinstance(state.session.info.get(ROW_SECURITY_KEY), NotStarted) and not scope_of(state.session).all_owners \
            and not (state.is_select or state.is_insert or state.is_update or state.is_delete):
        raise OwnershipError("raw SQL in a session on PostgreSQL waits for Database.start(), which puts the owned "
                             "tables under row-level security")


async def enforce(connection: AsyncConnection, owned: Sequence[Table], tables: Sequence[Table]) -> RowSecurity:
    """Row-level security on the ``owned`` tables, and the role sessions switch to if the connected
    user would bypass it (granted DML on ``tables``: every table sessions use). Run under the schema lock."""
    try:
        for table in owned:
            await _protect(connection, table)
        if not await _bypasses(connection, None):
            return RowSecurity(role=None)
        await _prepare_role(connection, tables)
        return RowSecurity(role=ROLE)
    except DBAPIError as exc:
        reason = str(exc.orig).splitlines()[0].split(": ", 1)[-1] if exc.orig else type(exc).__name__
        raise ConfigError(
            f"cannot enforce row-level security on the owned tables ({reason}); connect as the owner of the "
            f"app's tables without BYPASSRLS, or as a user that may create the role {ROLE} (NOLOGIN, no "
            "BYPASSRLS) and grant it to itself") from None


async def _protect(connection: AsyncConnection, table: Table) -> None:
    name = connection.dialect.identifier_preparer.format_table(table)
    in_force = (await connection.execute(text(
        "SELECT c.relrowsecurity AND c.relforcerowsecurity AND EXISTS ("
        " SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = :policy)"
        " FROM pg_class c WHERE c.oid = CAST(:table AS regclass)"), {"policy": POLICY, "table": name})).scalar_one()
    if in_force:
        return  # altering a table takes its strongest lock: only when something is missing
    visible = VISIBLE.format(owner=connection.dialect.identifier_preparer.quote(OWNER_COLUMN))
    for statement in (f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY",
                      f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY",
                      f"DROP POLICY IF EXISTS {POLICY} ON {name}",
                      f"CREATE POLICY {POLICY} ON {name} USING ({visible}) WITH CHECK ({visible})"):
        await connection.exec_driver_sql(statement)


async def _bypasses(connection: AsyncConnection, role: str | None) -> bool | None:
    """Whether ``role`` (``None``: the connected user) skips every policy; ``None``: no such role."""
    return (await connection.execute(text(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = coalesce(CAST(:role AS name), current_user)"),
        {"role": role})).scalar_one_or_none()


async def _prepare_role(connection: AsyncConnection, tables: Sequence[Table]) -> None:
    """The role ``ROLE`` exists, is held to policies, may be switched to, and may use ``tables``."""
    bypasses = await _bypasses(connection, ROLE)
    if bypasses is None:  # two instances (or two databases of one cluster) may create it at once
        await connection.exec_driver_sql(
            f"DO $$ BEGIN CREATE ROLE {ROLE} NOLOGIN NOBYPASSRLS; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$")
    elif bypasses:
        raise ConfigError(f"the role {ROLE} bypasses row-level security (SUPERUSER or BYPASSRLS): "
                          f"ALTER ROLE {ROLE} NOSUPERUSER NOBYPASSRLS")
    if not (await connection.execute(text("SELECT pg_has_role(current_user, :role, 'MEMBER')"),
                                     {"role": ROLE})).scalar_one():
        await connection.exec_driver_sql(f"GRANT {ROLE} TO CURRENT_USER")
    names = [connection.dialect.identifier_preparer.format_table(table) for table in tables]
    missing = (await connection.execute(text(
        "SELECT t FROM unnest(CAST(:tables AS text[])) AS t WHERE NOT (has_table_privilege(:role, t, 'SELECT')"
        " AND has_table_privilege(:role, t, 'INSERT') AND has_table_privilege(:role, t, 'UPDATE')"
        " AND has_table_privilege(:role, t, 'DELETE'))"),
        {"tables": names, "role": ROLE})).scalars().all()
    for name in missing:
        await connection.exec_driver_sql(f"GRANT {', '.join(DML)} ON {name} TO {ROLE}")
    schemas = (await connection.execute(text(
        "SELECT DISTINCT quote_ident(n.nspname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.oid = ANY(CAST(:tables AS regclass[])) AND NOT has_schema_privilege(:role, n.oid, 'USAGE')"),
        {"tables": names, "role": ROLE})).scalars().all()
    for schema in schemas:
        await connection.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO {ROLE}")
    sequences = (await connection.execute(text(  # serial and identity columns' sequences
        "SELECT CAST(CAST(s.oid AS regclass) AS text) FROM pg_depend d"
        " JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'"
        " WHERE d.refobjid = ANY(CAST(:tables AS regclass[])) AND d.deptype IN ('a', 'i')"
        # CASE: the planner may test the privilege before the join has kept only sequences
        " AND NOT CASE WHEN s.relkind = 'S' THEN has_sequence_privilege(:role, s.oid, 'USAGE') END"),
        {"tables": names, "role": ROLE})).scalars().all()
    for sequence in sequences:
        await connection.exec_driver_sql(f"GRANT USAGE, SELECT ON SEQUENCE {sequence} TO {ROLE}")
