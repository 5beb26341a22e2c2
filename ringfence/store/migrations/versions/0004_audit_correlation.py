"""audit correlation (revision 0004).

Each audit record carries the request id of its log lines and a keyed hash of the host's session
id (ringfence/audit/correlation.py), both indexed for ``ringfence audit show --request-id`` and
``--session``. Records written before have neither (NULL): their record hashes never covered them,
so they verify as before; a record written since has them covered by its hash when it has them.

Like the baseline, it adopts a table that ``create_all`` of the current models made already.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

TABLE = 'ringfence_audit'
COLUMNS = (sa.Column('request_id', sa.String(length=128), nullable=True),
           sa.Column('session_hash', sa.String(length=16), nullable=True))
INDEXES = (('ix_ringfence_audit_request_id', 'request_id'), ('ix_ringfence_audit_session_hash', 'session_hash'))


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    present = {column['name'] for column in inspector.get_columns(TABLE)}
    for column in COLUMNS:
        if column.name not in present:
            op.add_column(TABLE, column)
    indexed = {index['name'] for index in inspector.get_indexes(TABLE)}
    for name, column_name in INDEXES:
        if name not in indexed:
            op.create_index(name, TABLE, [column_name], unique=False)


def downgrade() -> None:
    for name, _ in INDEXES:
        op.drop_index(name, table_name=TABLE)
    with op.batch_alter_table(TABLE) as batch:
        for column in COLUMNS:
            batch.drop_column(column.name)
