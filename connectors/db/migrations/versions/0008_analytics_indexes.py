"""analytics: the per-request track cache

Revision ID: 0008_analytics_indexes
Revises: 0007_board_columns

Adds ``analytics_tracks``: each request's analytics track (states.analytics.Track as JSON) with the
``requests.head_seq`` it was computed at. Derived data only (connectors/db/analytics.py rebuilds any
row whose head_seq is not the request's); existing tables and rows are untouched.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_analytics_indexes'
down_revision = '0007_board_columns'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('analytics_tracks',
    sa.Column('request_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('head_seq', sa.BigInteger(), nullable=False),
    sa.Column('track', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('request_id')
    )


def downgrade() -> None:
    op.drop_table('analytics_tracks')
