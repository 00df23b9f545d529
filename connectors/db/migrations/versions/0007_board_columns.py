"""board columns: the board's card facts on the requests row

Revision ID: 0007_board_columns
Revises: 0006_web_users

Adds ``in_state_since``, ``owners``, ``next_action`` and ``missing`` to ``requests`` (kept by the store on
every save, see ``states/card.py``) and the ``request_counts`` table (requests per state, kept by the
store on every add and state change), and backfills both for the existing rows: the facts from each
document, the time of the newest transition from the history (else the creation). The history is
only read; a row whose document cannot be read keeps NULLs (the board shows it without them).
"""
from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0007_board_columns'
down_revision = '0006_web_users'
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('in_state_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('owners', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('next_action', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('missing', sa.Text(), nullable=True))
    op.create_table('request_counts',
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('state')
    )
    op.execute("INSERT INTO request_counts (state, n) SELECT state, count(*) FROM requests GROUP BY state")
    _backfill(op.get_bind())


def _backfill(conn: sa.Connection) -> None:
    from pydantic import ValidationError

    from states.card import facts
    from states.request import TrainingRequest

    requests = sa.table('requests', sa.column('id', sa.Integer()), sa.column('document', sa.Text()),
                        sa.column('created_at', sa.DateTime(timezone=True)),
                        sa.column('in_state_since', sa.DateTime(timezone=True)), sa.column('owners', sa.Text()),
                        sa.column('next_action', sa.String()), sa.column('missing', sa.Text()))
    events = sa.table('audit_events', sa.column('request_id', sa.Integer()), sa.column('to_state', sa.String()),
                      sa.column('at', sa.String()))
    fill = (sa.update(requests).where(requests.c.id == sa.bindparam('b_id'))
            .values(in_state_since=sa.bindparam('b_since'), owners=sa.bindparam('b_owners'),
                    next_action=sa.bindparam('b_next'), missing=sa.bindparam('b_missing')))
    last = 0
    while True:
        rows = conn.execute(sa.select(requests.c.id, requests.c.document, requests.c.created_at)
                            .where(requests.c.id > last).order_by(requests.c.id).limit(_BATCH)).all()
        if not rows:
            return
        ids = [r.id for r in rows]
        moved = dict(conn.execute(sa.select(events.c.request_id, sa.func.max(events.c.at))
                                  .where(events.c.request_id.in_(ids), events.c.to_state.is_not(None))
                                  .group_by(events.c.request_id)).all())
        values = []
        for r in rows:
            created = r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=UTC)
            since = datetime.fromisoformat(moved[r.id].replace('Z', '+00:00')) if r.id in moved else created
            try:
                card = facts(TrainingRequest.from_stored(r.document))
            except (ValidationError, ValueError):
                values.append({'b_id': r.id, 'b_since': since, 'b_owners': None, 'b_next': None, 'b_missing': None})
                continue
            values.append({'b_id': r.id, 'b_since': since, 'b_owners': json.dumps(list(card.owners)),
                           'b_next': card.next_action, 'b_missing': json.dumps(list(card.missing))})
        conn.execute(fill, values)
        last = ids[-1]


def downgrade() -> None:
    op.drop_table('request_counts')
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_column('missing')
        batch_op.drop_column('next_action')
        batch_op.drop_column('owners')
        batch_op.drop_column('in_state_since')
