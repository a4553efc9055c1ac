"""State checks (the tables compared with the ledger) and node endpoint changes awaiting the operator.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'state_checks',
        sa.Column('id', sa.String(length=16), nullable=False),
        sa.Column('ok', sa.Boolean(), nullable=False),
        sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ledger_size', sa.BigInteger(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('differences', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_state_checks')),
    )
    with op.batch_alter_table('assets') as batch:
        batch.add_column(sa.Column('pending_node_endpoint', sa.String(length=500), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    # A plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35): a batch copy of `assets` would have to drop the table
    # that other tables' foreign keys reference, which SQLite refuses while foreign keys are enforced.
    op.drop_column('assets', 'pending_node_endpoint')
    op.drop_table('state_checks')
