"""link uses: what people outside L&D did through their signed links

Revision ID: 0004_links
Revises: 0003_api_tokens
Create Date: 2026-12-01 23:45:00

A new table only: existing rows are untouched.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_links'
down_revision = '0003_api_tokens'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('link_uses',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('link_id', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=30), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('person', sa.String(length=320), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('once_key', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('once_key', name='uq_link_uses_once')
    )
    with op.batch_alter_table('link_uses', schema=None) as batch_op:
        batch_op.create_index('ix_link_uses_link', ['link_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('link_uses', schema=None) as batch_op:
        batch_op.drop_index('ix_link_uses_link')
    op.drop_table('link_uses')
