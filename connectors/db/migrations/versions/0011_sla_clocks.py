"""sla clocks: the SLA clock summary and the owners' names on the requests row

Revision ID: 0011_sla_clocks
Revises: 0010_analytics_speed

Adds ``sla_entries`` (one line per audit event: its type, time and checkpoint key, as
``states.sla.clock_lines`` writes them; the store appends to it in the transaction of every event)
and ``owner_names`` (``states.sla.owner_names`` of the document) to ``requests``, and backfills both
for the existing rows: the lines from each request's history in ``rseq`` order, the names from its
document (a row whose document cannot be read keeps NULL names). The history is only read. Creates
``sla_outcomes``, the cache of each request's SLA outcome under one policy digest (``flows.sla``),
with two narrow columns the reads select on (``quiet``: until when its running runs cannot be near,
``stopped``: the SLAs its stopped runs breached), empty: the first read fills it.
"""
from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = '0011_sla_clocks'
down_revision = '0010_analytics_speed'
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sla_entries', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('owner_names', sa.Text(), nullable=True))
    op.create_table('sla_outcomes',
    sa.Column('request_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('head_seq', sa.BigInteger(), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.Column('quiet', sa.BigInteger(), nullable=True),
    sa.Column('stopped', sa.Text(), nullable=False, server_default=''),
    sa.PrimaryKeyConstraint('request_id')
    )
    op.create_index('ix_sla_outcomes_due', 'sla_outcomes', ['digest', 'quiet'], unique=False)
    op.create_index('ix_sla_outcomes_head', 'sla_outcomes', ['request_id', 'digest', 'head_seq', 'stopped'],
                    unique=False)
    backfill(op.get_bind())


def backfill(conn: sa.Connection) -> None:
    """Fill ``sla_entries`` and ``owner_names`` of every request (also used by bench/attention.py)."""
    from pydantic import ValidationError

    from states.request import TrainingRequest
    from states.sla import clock_lines, owner_names

    requests = sa.table('requests', sa.column('id', sa.Integer()), sa.column('document', sa.Text()),
                        sa.column('sla_entries', sa.Text()), sa.column('owner_names', sa.Text()))
    events = sa.table('audit_events', sa.column('request_id', sa.Integer()), sa.column('rseq', sa.Integer()),
                      sa.column('type', sa.String()), sa.column('at', sa.String()), sa.column('payload', sa.Text()))
    fill = (sa.update(requests).where(requests.c.id == sa.bindparam('b_id'))
            .values(sla_entries=sa.bindparam('b_lines'), owner_names=sa.bindparam('b_names')))
    last = 0
    while True:
        rows = conn.execute(sa.select(requests.c.id, requests.c.document).where(requests.c.id > last)
                            .order_by(requests.c.id).limit(_BATCH)).all()
        if not rows:
            return
        ids = [r.id for r in rows]
        found: dict[int, list[tuple[str, str, object]]] = {i: [] for i in ids}
        for e in conn.execute(sa.select(events.c.request_id, events.c.type, events.c.at, events.c.payload)
                              .where(events.c.request_id.in_(ids))
                              .order_by(events.c.request_id, events.c.rseq)):
            payload = e.payload or "{}"  # only its checkpoint is read: most payloads need no parse
            found[e.request_id].append((e.type, e.at, json.loads(payload) if '"checkpoint"' in payload else {}))
        values = []
        for r in rows:
            try:
                names: str | None = json.dumps(owner_names(TrainingRequest.from_stored(r.document)))
            except (ValidationError, ValueError):
                names = None
            values.append({'b_id': r.id, 'b_lines': clock_lines(found[r.id]), 'b_names': names})
        conn.execute(fill, values)
        last = ids[-1]


def downgrade() -> None:
    op.drop_index('ix_sla_outcomes_head', table_name='sla_outcomes')
    op.drop_index('ix_sla_outcomes_due', table_name='sla_outcomes')
    op.drop_table('sla_outcomes')
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_column('owner_names')
        batch_op.drop_column('sla_entries')
