"""Authorization: grants, the providers that decide on them, scenario assets, jobs and their tickets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('grants',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('consumer_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('domain', sa.String(length=64), nullable=True),
    sa.Column('max_grade', sa.Integer(), nullable=True),
    sa.Column('scenario', sa.String(length=200), nullable=True),
    sa.Column('purpose', sa.Text(), nullable=True),
    sa.Column('terms', sa.JSON(), nullable=False),
    sa.Column('requested_terms', sa.JSON(), nullable=False),
    sa.Column('counter_terms', sa.JSON(), nullable=True),
    sa.Column('countered_by', sa.String(length=40), nullable=True),
    sa.Column('needs_regulator', sa.Boolean(), nullable=False),
    sa.Column('core_exception', sa.Boolean(), nullable=False),
    sa.Column('regulator_id', sa.String(length=40), nullable=True),
    sa.Column('renewal_of', sa.String(length=40), nullable=True),
    sa.Column('jobs_used', sa.Integer(), nullable=False),
    sa.Column('rows_used', sa.BigInteger(), nullable=False),
    sa.Column('epsilon_used', sa.Float(), nullable=False),
    sa.Column('end_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['consumer_id'], ['participants.id'], name=op.f('fk_grants_consumer_id_participants')),
    sa.ForeignKeyConstraint(['domain'], ['domains.code'], name=op.f('fk_grants_domain_domains')),
    sa.ForeignKeyConstraint(['renewal_of'], ['grants.id'], name=op.f('fk_grants_renewal_of_grants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grants'))
    )
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grants_consumer_id'), ['consumer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_grants_status'), ['status'], unique=False)

    op.create_table('grant_assets',
    sa.Column('grant_id', sa.String(length=40), nullable=False),
    sa.Column('asset_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_grant_assets_asset_id_assets')),
    sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], name=op.f('fk_grant_assets_grant_id_grants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('grant_id', 'asset_id', name=op.f('pk_grant_assets'))
    )
    op.create_table('grant_providers',
    sa.Column('grant_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], name=op.f('fk_grant_providers_grant_id_grants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['participants.id'], name=op.f('fk_grant_providers_provider_id_participants')),
    sa.PrimaryKeyConstraint('grant_id', 'provider_id', name=op.f('pk_grant_providers'))
    )
    with op.batch_alter_table('grant_providers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grant_providers_provider_id'), ['provider_id'], unique=False)

    op.create_table('jobs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('grant_id', sa.String(length=40), nullable=False),
    sa.Column('consumer_id', sa.String(length=40), nullable=False),
    sa.Column('computation_kind', sa.String(length=32), nullable=False),
    sa.Column('assets', sa.JSON(), nullable=False),
    sa.Column('params_sha256', sa.String(length=64), nullable=False),
    sa.Column('context_sha256', sa.String(length=64), nullable=True),
    sa.Column('rows_reserved', sa.BigInteger(), nullable=False),
    sa.Column('epsilon', sa.Float(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['consumer_id'], ['participants.id'], name=op.f('fk_jobs_consumer_id_participants')),
    sa.ForeignKeyConstraint(['grant_id'], ['grants.id'], name=op.f('fk_jobs_grant_id_grants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jobs_consumer_id'), ['consumer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_grant_id'), ['grant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_status'), ['status'], unique=False)

    op.create_table('job_tickets',
    sa.Column('job_id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('ticket', sa.JSON(), nullable=False),
    sa.Column('signature', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_tickets_job_id_jobs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['participants.id'], name=op.f('fk_job_tickets_provider_id_participants')),
    sa.PrimaryKeyConstraint('job_id', 'provider_id', name=op.f('pk_job_tickets'))
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('job_tickets')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_status'))
        batch_op.drop_index(batch_op.f('ix_jobs_grant_id'))
        batch_op.drop_index(batch_op.f('ix_jobs_consumer_id'))

    op.drop_table('jobs')
    with op.batch_alter_table('grant_providers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grant_providers_provider_id'))

    op.drop_table('grant_providers')
    op.drop_table('grant_assets')
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grants_status'))
        batch_op.drop_index(batch_op.f('ix_grants_consumer_id'))

    op.drop_table('grants')
