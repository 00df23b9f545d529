"""inbound content digest

Revision ID: 0002_inbound_content_digest
Revises: 0001
Create Date: 2026-12-01 23:59:00

``inbound.content_sha256``: what a recorded mail said (``InboundMessage.content_digest``), so that a
second mail with a known Message-ID but different content is quarantined instead of skipped as seen.
Rows recorded before it have NULL: for them a known Message-ID still means seen.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002_inbound_content_digest'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inbound', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content_sha256', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('inbound', schema=None) as batch_op:
        batch_op.drop_column('content_sha256')
