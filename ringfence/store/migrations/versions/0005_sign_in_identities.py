"""sign-in identities (revision 0005).

Accounts provisioned by a login provider (ringfence/authserver/login_providers.py) keep who they
are there: the provider's issuer and subject, unique together. Sign-ins sent to a provider and not
yet back are kept, bound to their browser session, for ten minutes.

Like the baseline, it adopts a table that ``create_all`` of the current models made already.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ringfence.store.migrations import adopt

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    adopt.create_table('ringfence_sign_in_identities',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('issuer', sa.String(length=512), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['ringfence_users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id'),
    sa.UniqueConstraint('issuer', 'subject', name='uq_ringfence_sign_in_identities')
    )
    adopt.create_table('ringfence_pending_sign_ins',
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('session_hash', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('code_verifier', sa.String(length=128), nullable=False),
    sa.Column('next_url', sa.Text(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['ringfence_users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('state_hash')
    )


def downgrade() -> None:
    op.drop_table('ringfence_pending_sign_ins')
    op.drop_table('ringfence_sign_in_identities')
