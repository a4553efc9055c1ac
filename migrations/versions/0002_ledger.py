"""The ledger: entries, parties, commitment openings, stored Merkle nodes, the head row, checkpoints.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('ledger_checkpoints',
    sa.Column('size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('root', sa.LargeBinary(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('size', name=op.f('pk_ledger_checkpoints'))
    )
    op.create_table('ledger_entries',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('operator_sig', sa.String(length=100), nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('actor', sa.String(length=40), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_ledger_entries')),
    sa.UniqueConstraint('actor', 'nonce', name=op.f('uq_ledger_entries_actor'))
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entries_actor'), ['actor'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_leaf_hash'), ['leaf_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entries_type'), ['type'], unique=False)

    op.create_table('ledger_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('last_time', sa.String(length=32), nullable=False),
    sa.Column('frontier', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_head'))
    )
    op.create_table('ledger_nodes',
    sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('index', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('level', 'index', name=op.f('pk_ledger_nodes'))
    )
    op.create_table('ledger_cosignatures',
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('witness_id', sa.String(length=40), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('line', sa.Text(), nullable=False),
    sa.Column('timestamp', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['size'], ['ledger_checkpoints.size'], name=op.f('fk_ledger_cosignatures_size_ledger_checkpoints')),
    sa.PrimaryKeyConstraint('size', 'name', name=op.f('pk_ledger_cosignatures'))
    )
    with op.batch_alter_table('ledger_cosignatures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_cosignatures_witness_id'), ['witness_id'], unique=False)

    op.create_table('ledger_openings',
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('field', sa.String(length=64), nullable=False),
    sa.Column('salt', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['seq'], ['ledger_entries.seq'], name=op.f('fk_ledger_openings_seq_ledger_entries')),
    sa.PrimaryKeyConstraint('seq', 'field', name=op.f('pk_ledger_openings'))
    )
    op.create_table('ledger_parties',
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('participant_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['seq'], ['ledger_entries.seq'], name=op.f('fk_ledger_parties_seq_ledger_entries')),
    sa.PrimaryKeyConstraint('seq', 'participant_id', name=op.f('pk_ledger_parties'))
    )
    with op.batch_alter_table('ledger_parties', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_parties_participant_id'), ['participant_id'], unique=False)

    # The one head row: appenders lock it; the log starts empty.
    head = sa.table('ledger_head', sa.column('id', sa.Integer), sa.column('size', sa.BigInteger),
                    sa.column('last_time', sa.String), sa.column('frontier', sa.LargeBinary))
    op.bulk_insert(head, [{"id": 1, "size": 0, "last_time": "", "frontier": b""}])



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('ledger_parties', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_parties_participant_id'))

    op.drop_table('ledger_parties')
    op.drop_table('ledger_openings')
    with op.batch_alter_table('ledger_cosignatures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_cosignatures_witness_id'))

    op.drop_table('ledger_cosignatures')
    op.drop_table('ledger_nodes')
    op.drop_table('ledger_head')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entries_type'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_leaf_hash'))
        batch_op.drop_index(batch_op.f('ix_ledger_entries_actor'))

    op.drop_table('ledger_entries')
    op.drop_table('ledger_checkpoints')
