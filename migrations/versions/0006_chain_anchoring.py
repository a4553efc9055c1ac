"""Chain anchoring: the deployment, the queue of anchors and grant mirrors, the sender's state; grants' last mark.

Grants that exist already get their last mark computed from the ledger, by the rule of ledger.anchor.records
(copied here so this migration keeps meaning what it meant when it was written).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""
import json
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

MIRRORED = ("active", "suspended", "revoked", "terminated", "expired")


# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('chain_anchors',
    sa.Column('size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('root', sa.LargeBinary(length=32), nullable=False),
    sa.Column('checkpoint_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tx_hash', sa.String(length=66), nullable=True),
    sa.Column('block_number', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('size', name=op.f('pk_chain_anchors'))
    )
    with op.batch_alter_table('chain_anchors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chain_anchors_state'), ['state'], unique=False)

    op.create_table('chain_deployments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('chain_id', sa.BigInteger(), nullable=False),
    sa.Column('anchor_address', sa.String(length=42), nullable=False),
    sa.Column('registry_address', sa.String(length=42), nullable=False),
    sa.Column('sender', sa.String(length=42), nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('ledger_seq', sa.BigInteger(), nullable=False),
    sa.Column('deployed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chain_deployments'))
    )
    op.create_table('chain_mirrors',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('grant_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('terms_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('valid_from', sa.BigInteger(), nullable=False),
    sa.Column('valid_until', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tx_hash', sa.String(length=66), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_chain_mirrors'))
    )
    with op.batch_alter_table('chain_mirrors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chain_mirrors_state'), ['state'], unique=False)

    op.create_table('chain_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sa.String(length=80), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chain_state'))
    )
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mark_status', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('mark_seq', sa.BigInteger(), nullable=True))
    _mark_existing_grants()


def _mark_existing_grants() -> None:
    bind = op.get_bind()
    marks: dict[str, tuple[str, int]] = {}
    rows = bind.execute(sa.text("SELECT seq, data FROM ledger_entries WHERE type LIKE 'grant.%' ORDER BY seq"))
    for seq, data in rows:
        entry = json.loads(bytes(data))
        grant_id, status = entry["refs"]["grant"][0], entry["body"].get("status")
        previous = marks.get(grant_id, (None, None))[0]
        if status in MIRRORED and status != previous and (previous is not None or status == "active"):
            marks[grant_id] = (status, seq)
    for grant_id, (status, seq) in marks.items():
        bind.execute(sa.text("UPDATE grants SET mark_status = :status, mark_seq = :seq WHERE id = :id"),
                     {"status": status, "seq": seq, "id": grant_id})


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_column('mark_seq')
        batch_op.drop_column('mark_status')

    op.drop_table('chain_state')
    with op.batch_alter_table('chain_mirrors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chain_mirrors_state'))

    op.drop_table('chain_mirrors')
    op.drop_table('chain_deployments')
    with op.batch_alter_table('chain_anchors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chain_anchors_state'))

    op.drop_table('chain_anchors')
