"""grants (revision 0002; written by ``python -m ringfence.store.migrations``).

The embedded authorization server's grants: what one exchanged authorization code gave a client,
named by its access tokens and revocable at once (ringfence/authserver/live_grants.py). Every
refresh-token family already stored becomes a grant, so that its refresh tokens keep working; a
family with a revoked token is a revoked grant (revocation always revoked whole families).

Like the baseline, it adopts the table when ``create_all`` of the current models made it already.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ringfence.store.migrations import adopt

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    adopt.create_table('ringfence_grants',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=2048), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('revoked_at', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['ringfence_users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    adopt.create_index('ix_ringfence_grants_user', 'ringfence_grants', ['user_id'], unique=False)
    op.execute(
        "INSERT INTO ringfence_grants (id, user_id, client_id, created_at, revoked_at) "
        "SELECT family_id, MIN(user_id), MIN(client_id), MIN(created_at), MAX(revoked_at) "
        "FROM ringfence_refresh_tokens WHERE family_id NOT IN (SELECT id FROM ringfence_grants) GROUP BY family_id"
    )


def downgrade() -> None:
    op.drop_index('ix_ringfence_grants_user', table_name='ringfence_grants')
    op.drop_table('ringfence_grants')
