"""api tokens: the personal access tokens of the JSON API (their secrets' SHA-256, never the secrets)

Revision ID: 0003_api_tokens
Revises: 0002_inbound_content_digest

Adds the ``api_tokens`` table; existing tables and their rows are untouched.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003_api_tokens'
down_revision = '0002_inbound_content_digest'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('owner', sa.String(length=320), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=320), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    sa.UniqueConstraint('secret_hash')
    )


def downgrade() -> None:
    op.drop_table('api_tokens')
