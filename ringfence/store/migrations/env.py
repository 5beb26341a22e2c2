"""Alembic's environment for ringfence's tables: always on a connection ringfence hands over (online only)."""

from __future__ import annotations

from alembic import context

from ringfence.store.schema import VERSION_TABLE, include_name, internal_metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("ringfence's migrations run through `ringfence db upgrade` or at start-up, not `alembic`")

context.configure(
    connection=connection,
    target_metadata=internal_metadata(),
    version_table=VERSION_TABLE,
    include_name=include_name,
    compare_type=True,
    # SQLite alters a table by copying it; the baseline only creates tables, and adopts them (adopt.py).
    render_as_batch=context.config.attributes.get("render_as_batch", connection.dialect.name == "sqlite"),
)
with context.begin_transaction():
    context.run_migrations()
