"""event outbox: the Prefect events of a change, committed with it and published by the pipeline

Revision ID: 0005_event_outbox
Revises: 0004_links

Adds the ``event_outbox`` table; existing tables and their rows are untouched.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_event_outbox'
down_revision = '0004_links'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('event_outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('event', sa.String(length=120), nullable=False),
    sa.Column('resource', sa.Text(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('occurred', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    with op.batch_alter_table('event_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_event_outbox_published', ['published_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('event_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_event_outbox_published')
    op.drop_table('event_outbox')
