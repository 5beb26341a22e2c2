"""confirmation binding (revision 0003).

A pending confirmation keeps the digest of what it approves (the tool, the arguments' hash, the
principal and the preview the user was shown: ringfence/guards/confirmation.py) and the OAuth
client that asked, which the confirmation page names. Rows made before have no digest, so no call
redeems them: an approval given before the upgrade must be given again (they live five minutes).

Like the baseline, it adopts a table that ``create_all`` of the current models made already.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

TABLE = 'ringfence_confirmations'
COLUMNS = (sa.Column('binding_hash', sa.String(length=64), nullable=True),
           sa.Column('client_id', sa.String(length=2048), nullable=True))


def upgrade() -> None:
    present = {column['name'] for column in sa.inspect(op.get_bind()).get_columns(TABLE)}
    for column in COLUMNS:
        if column.name not in present:
            op.add_column(TABLE, column)


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        for column in COLUMNS:
            batch.drop_column(column.name)
