"""analytics speed: the track cache's values as columns, the verdicts as rows, a covering index

Revision ID: 0010_analytics_speed
Revises: 0009_audit_chains

Adds ``analytics_facts`` (per request, the values the figures group and sum:
``states.analytics_summary.columns``) and ``analytics_outcomes`` (the latest measurement's verdict per
plan item), written with each ``analytics_tracks`` row. That cache is derived data
(connectors/db/analytics.py rebuilds any row whose head_seq is not the request's), so its rows are
deleted: the first ``ldflow analytics`` after the upgrade computes every track again, with its facts.
``ix_audit_analytics`` on ``audit_events (type, request_id, seq, to_state, at)`` covers the
aggregates' reads of the transition and checkpoint events; ``ix_requests_head`` lets the audit
head and the stale check read no document (the facts carry their track's head_seq); the facts'
indexes give the groups and the ROI sums in order and each duration's ranks by OFFSET. No other
row is touched; downgrade drops the two tables and the indexes (the tracks stay, valid as they are).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010_analytics_speed'
down_revision = '0009_audit_chains'
branch_labels = None
depends_on = None

_STAYS = ("received", "diagnosed", "redirected", "designed", "delivered", "measured", "acknowledged", "declined",
          "cancelled")
_COUNTERS = ("scheduled", "sent", "answered", "missed", "flagged", "superseded")


def upgrade() -> None:
    op.execute("DELETE FROM analytics_tracks")
    op.create_table('analytics_facts',
    sa.Column('request_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('head_seq', sa.BigInteger(), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('sponsor', sa.String(length=320), nullable=False),
    sa.Column('path', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('reached', sa.Integer(), nullable=False),
    sa.Column('causes', sa.Integer(), nullable=False),
    sa.Column('delivered_ckpt', sa.Integer(), nullable=False),
    sa.Column('all_closed', sa.Integer(), nullable=False),
    *(sa.Column(name, sa.Integer(), nullable=False) for name in _COUNTERS),
    sa.Column('roi_currency', sa.String(length=10), nullable=False),
    sa.Column('isolated', sa.Float(), nullable=False),
    sa.Column('not_isolated', sa.Float(), nullable=False),
    sa.Column('costs', sa.Float(), nullable=False),
    *(sa.Column(f't_{state}', sa.Float(), nullable=True) for state in _STAYS),
    sa.Column('plan_approval', sa.Float(), nullable=True),
    sa.Column('delivery_to_last_result', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('request_id')
    )
    op.create_index('ix_analytics_facts_sponsor', 'analytics_facts', ['sponsor'], unique=False)
    op.create_index('ix_analytics_facts_head', 'analytics_facts', ['head_seq'], unique=False)
    op.create_index('ix_analytics_facts_money', 'analytics_facts', ['roi_currency', 'isolated', 'not_isolated',
                    'costs'], unique=False)
    op.create_index('ix_analytics_facts_groups', 'analytics_facts', ['month', 'path', 'kind', 'reached', 'causes',
                    'delivered_ckpt', 'all_closed', *_COUNTERS], unique=False)
    for name in (*(f't_{s}' for s in _STAYS), 'plan_approval', 'delivery_to_last_result'):
        op.create_index(f'ix_analytics_facts_{name}', 'analytics_facts', [name], unique=False)
    op.create_table('analytics_outcomes',
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('sponsor', sa.String(length=320), nullable=False),
    sa.Column('path', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('framework', sa.String(length=40), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    )
    op.create_index('ix_analytics_outcomes_request', 'analytics_outcomes', ['request_id'], unique=False)
    op.create_index('ix_analytics_outcomes_counts', 'analytics_outcomes', ['framework', 'level', 'sponsor', 'outcome'],
                    unique=False)
    op.create_index('ix_requests_head', 'requests', ['id', 'head_seq'], unique=False)
    op.create_index('ix_audit_analytics', 'audit_events', ['type', 'request_id', 'seq', 'to_state', 'at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_requests_head', table_name='requests')
    op.drop_index('ix_audit_analytics', table_name='audit_events')
    op.drop_table('analytics_outcomes')
    op.drop_table('analytics_facts')
