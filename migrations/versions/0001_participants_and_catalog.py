"""Participants, keys, tokens, domains (seeded with the default vocabulary), assets and authoritative sources.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""
from datetime import datetime, timezone
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

from catalog.vocab import SEED_DOMAINS

# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('domains',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('eu_theme', sa.String(length=8), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_domains'))
    )
    op.create_table('participants',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('contact_email', sa.String(length=254), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_participants'))
    )
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_participants_status'), ['status'], unique=False)

    op.create_table('api_tokens',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('participant_id', sa.String(length=40), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_api_tokens_participant_id_participants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_participant_id'), ['participant_id'], unique=False)

    op.create_table('assets',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('provider_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('title_zh', sa.String(length=200), nullable=False),
    sa.Column('title_en', sa.String(length=200), nullable=False),
    sa.Column('description_zh', sa.Text(), nullable=False),
    sa.Column('description_en', sa.Text(), nullable=False),
    sa.Column('domain_code', sa.String(length=64), nullable=False),
    sa.Column('keywords', sa.JSON(), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('grade', sa.Integer(), nullable=False),
    sa.Column('update_frequency', sa.String(length=16), nullable=False),
    sa.Column('license', sa.String(length=200), nullable=False),
    sa.Column('price', sa.JSON(), nullable=False),
    sa.Column('node_endpoint', sa.String(length=500), nullable=False),
    sa.Column('dataset', sa.String(length=100), nullable=False),
    sa.Column('element_codes', sa.JSON(), nullable=False),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['domain_code'], ['domains.code'], name=op.f('fk_assets_domain_code_domains')),
    sa.ForeignKeyConstraint(['provider_id'], ['participants.id'], name=op.f('fk_assets_provider_id_participants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assets'))
    )
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assets_domain_code'), ['domain_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_assets_grade'), ['grade'], unique=False)
        batch_op.create_index(batch_op.f('ix_assets_provider_id'), ['provider_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_assets_published_at'), ['published_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_assets_status'), ['status'], unique=False)

    op.create_table('participant_keys',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('participant_id', sa.String(length=40), nullable=False),
    sa.Column('public_key', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_participant_keys_participant_id_participants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_participant_keys'))
    )
    with op.batch_alter_table('participant_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_participant_keys_participant_id'), ['participant_id'], unique=False)

    op.create_table('participant_roles',
    sa.Column('participant_id', sa.String(length=40), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_participant_roles_participant_id_participants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('participant_id', 'role', name=op.f('pk_participant_roles'))
    )
    with op.batch_alter_table('participant_roles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_participant_roles_role'), ['role'], unique=False)

    op.create_table('asset_computation_kinds',
    sa.Column('asset_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_asset_computation_kinds_asset_id_assets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('asset_id', 'kind', name=op.f('pk_asset_computation_kinds'))
    )
    with op.batch_alter_table('asset_computation_kinds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_asset_computation_kinds_kind'), ['kind'], unique=False)

    op.create_table('authoritative_sources',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('asset_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], name=op.f('fk_authoritative_sources_asset_id_assets')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_authoritative_sources'))
    )
    with op.batch_alter_table('authoritative_sources', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authoritative_sources_asset_id'), ['asset_id'], unique=False)

    domains = sa.table('domains', sa.column('code', sa.String), sa.column('name_zh', sa.String),
                       sa.column('name_en', sa.String), sa.column('eu_theme', sa.String),
                       sa.column('created_at', sa.DateTime(timezone=True)))
    now = datetime.now(timezone.utc)
    op.bulk_insert(domains, [{"code": d.code, "name_zh": d.name_zh, "name_en": d.name_en, "eu_theme": d.eu_theme,
                              "created_at": now} for d in SEED_DOMAINS])



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('authoritative_sources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authoritative_sources_asset_id'))

    op.drop_table('authoritative_sources')
    with op.batch_alter_table('asset_computation_kinds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_asset_computation_kinds_kind'))

    op.drop_table('asset_computation_kinds')
    with op.batch_alter_table('participant_roles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_participant_roles_role'))

    op.drop_table('participant_roles')
    with op.batch_alter_table('participant_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_participant_keys_participant_id'))

    op.drop_table('participant_keys')
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assets_status'))
        batch_op.drop_index(batch_op.f('ix_assets_published_at'))
        batch_op.drop_index(batch_op.f('ix_assets_provider_id'))
        batch_op.drop_index(batch_op.f('ix_assets_grade'))
        batch_op.drop_index(batch_op.f('ix_assets_domain_code'))

    op.drop_table('assets')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_participant_id'))

    op.drop_table('api_tokens')
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_participants_status'))

    op.drop_table('participants')
    op.drop_table('domains')
