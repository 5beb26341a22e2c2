"""provider tokens (revision 0006).

A person's tokens at their login provider, sealed, for the tools an app declares with
``provider_scopes=`` (ringfence/authserver/provider_tokens.py). One row per account.

Like the baseline, it adopts a table that ``create_all`` of the current models made already.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ringfence.store.migrations import adopt

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    adopt.create_table('ringfence_provider_tokens',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('access_token', sa.Text(), nullable=False),
    sa.Column('refresh_token', sa.Text(), nullable=True),
    sa.Column('expires_at', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.Column('refreshing_until', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['ringfence_users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id')
    )


def downgrade() -> None:
    op.drop_table('ringfence_provider_tokens')
