"""The regulator's no-DP exception on grants, refused probes per grant and the alerts they raise.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('grants') as batch:
        batch.add_column(sa.Column('dp_exception', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        'grant_refusals',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('grant_id', sa.String(length=40), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('cause', sa.String(length=200), nullable=False),
        sa.Column('job_id', sa.String(length=40), nullable=True),
        sa.Column('refused_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], name=op.f('fk_grant_refusals_grant_id_grants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_grant_refusals')),
    )
    op.create_index(op.f('ix_grant_refusals_grant_id'), 'grant_refusals', ['grant_id'])
    op.create_table(
        'grant_alerts',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('grant_id', sa.String(length=40), nullable=False),
        sa.Column('refusals', sa.Integer(), nullable=False),
        sa.Column('threshold', sa.Integer(), nullable=False),
        sa.Column('window_seconds', sa.Integer(), nullable=False),
        sa.Column('causes', sa.JSON(), nullable=False),
        sa.Column('jobs', sa.JSON(), nullable=False),
        sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ledger_seq', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], name=op.f('fk_grant_alerts_grant_id_grants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_grant_alerts')),
    )
    op.create_index(op.f('ix_grant_alerts_grant_id'), 'grant_alerts', ['grant_id'])
    op.create_index(op.f('ix_grant_alerts_raised_at'), 'grant_alerts', ['raised_at'])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_grant_alerts_raised_at'), table_name='grant_alerts')
    op.drop_index(op.f('ix_grant_alerts_grant_id'), table_name='grant_alerts')
    op.drop_table('grant_alerts')
    op.drop_index(op.f('ix_grant_refusals_grant_id'), table_name='grant_refusals')
    op.drop_table('grant_refusals')
    # A plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35), as in 0009: a batch copy of `grants` would drop a table
    # other tables' foreign keys reference.
    op.drop_column('grants', 'dp_exception')

