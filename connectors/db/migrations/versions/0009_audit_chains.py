"""audit chains: one hash chain per request, the document hash on each event, signed checkpoints

Revision ID: 0009_audit_chains
Revises: 0008_analytics_indexes

The global chain (``seq`` assigned under one lock, ``prev_hash`` of the previous event of any
request) is verified first with its own algorithm; a broken chain is refused with the first broken
event named, nothing changed. Then every request's events are re-chained on their own (``rseq``
1, 2, …, ``prev_hash`` of the same request's previous event; the global ``seq`` values are kept
for ordering), the newest event of each request records the hash of the request row as found
(older events record ``""``: their documents are not kept), the request row records its chain
head (``head_seq`` = number of events, ``head_hash``; ``head_mac`` stays "" until the next write or
checkpoint covers it: the migration has no key), and ``audit_checkpoints`` is created.
Downgrade re-chains globally with the old algorithm.
"""
from __future__ import annotations

import hashlib
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

from connectors.audit_chain import GENESIS, chain, doc_hash
from connectors.db.schema import MigrationRefused

revision = '0009_audit_chains'
down_revision = '0008_analytics_indexes'
branch_labels = None
depends_on = None

_MESSAGE = "audit_events is append-only"
_OLD_FIELDS = ("seq", "request_id", "type", "trigger", "from_state", "to_state", "version", "actor", "at")
_COLUMNS = ("type", "trigger", "from_state", "to_state", "version", "actor", "at", "payload")


def _old_hash(prev: str, row: Any) -> str:
    header = orjson.dumps([row[f] for f in _OLD_FIELDS])
    return hashlib.sha256(prev.encode() + header[:-1] + b"," + row["payload"].encode() + b"]").hexdigest()


def _refuse(seq: int, why: str) -> None:
    raise MigrationRefused(f"audit chain broken at event {seq}: {why}; not migrating to {revision} (the database "
                           "is unchanged): restore a backup taken before the tampering, or investigate with "
                           "`ldflow audit verify` on the previous version")


def _events_table(name: str) -> sa.Table:
    return sa.Table(
        name, sa.MetaData(),
        sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('rseq', sa.Integer(), nullable=False),
        sa.Column('type', sa.String(length=40), nullable=False),
        sa.Column('trigger', sa.String(length=20), nullable=True),
        sa.Column('from_state', sa.String(length=20), nullable=True),
        sa.Column('to_state', sa.String(length=20), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('actor', sa.String(length=320), nullable=False),
        sa.Column('at', sa.String(length=40), nullable=False),
        sa.Column('doc', sa.String(length=64), nullable=False),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.UniqueConstraint('request_id', 'rseq', name='uq_audit_request_rseq'),
    )


def _append_only(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE OR REPLACE FUNCTION ldflow_audit_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{_MESSAGE}'; END; $$ LANGUAGE plpgsql""")
        op.execute(f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE OR DELETE ON {table}
                      FOR EACH ROW EXECUTE FUNCTION ldflow_audit_append_only()""")
        op.execute(f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                      FOR EACH STATEMENT EXECUTE FUNCTION ldflow_audit_append_only()""")
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"""CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table}
                           BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END""")


def _drop_append_only(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")


def _fix_sequence(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'seq'), "
                   f"(SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}), false)")


def upgrade() -> None:
    conn = op.get_bind()
    old = sa.table('audit_events', *[sa.column(c) for c in (*_OLD_FIELDS, "payload", "prev_hash", "hash")])
    rows: list[Any] = [r._mapping for r in conn.execute(sa.select(old).order_by(old.c.seq))]
    # 1. The old global chain must verify, with its own algorithm, before anything changes.
    prev, newest = GENESIS, {}
    for n, r in enumerate(rows, start=1):
        if r["seq"] != n:
            _refuse(n, f"event {n} is missing (next found is {r['seq']})")
        if r["prev_hash"] != prev or _old_hash(prev, r) != r["hash"]:
            _refuse(n, "its content or link no longer matches its hash")
        prev = r["hash"]
        newest[r["request_id"]] = r["seq"]
    query = sa.text("SELECT id, head_seq, state, version, document FROM requests")
    reqs: dict[int, Any] = {r.id: r for r in conn.execute(query)}
    for rid, r in sorted(reqs.items()):
        if newest.get(rid, 0) != r.head_seq:
            _refuse(r.head_seq, f"request {rid} records event {r.head_seq} as its newest, the chain has "
                                f"{newest.get(rid, 0)}")
    orphans = set(newest) - set(reqs)
    if orphans:
        _refuse(newest[min(orphans)], f"events exist for request {min(orphans)}, which is not in the requests table")
    # 2. Re-chain each request's events on their own, keeping the global seq for ordering.
    by_request: dict[int, list[Any]] = {}
    for r in rows:
        by_request.setdefault(r["request_id"], []).append(r)
    new = _events_table('audit_events_v7')
    new.create(conn)
    heads: dict[int, tuple[int, str]] = {}
    for rid, events in by_request.items():
        req = reqs[rid]
        current = doc_hash(req.state, req.version, req.document)
        chained = chain((0, GENESIS), [{"request_id": rid, **{c: e[c] for c in _COLUMNS},
                                        "doc": current if i == len(events) - 1 else ""}
                                       for i, e in enumerate(events)])
        for full, e in zip(chained, events, strict=True):
            full["seq"] = e["seq"]
        for start in range(0, len(chained), 1000):
            conn.execute(sa.insert(new), chained[start:start + 1000])
        heads[rid] = (chained[-1]["rseq"], chained[-1]["hash"])
    _drop_append_only('audit_events')
    op.drop_index('ix_audit_request_seq', table_name='audit_events')
    op.drop_table('audit_events')
    op.rename_table('audit_events_v7', 'audit_events')
    _fix_sequence('audit_events')
    _append_only('audit_events')
    with op.batch_alter_table('requests') as batch:
        batch.add_column(sa.Column('head_hash', sa.String(length=64), nullable=False, server_default=GENESIS))
        batch.add_column(sa.Column('head_mac', sa.String(length=64), nullable=False, server_default=''))
    for rid, (count, h) in heads.items():
        conn.execute(sa.text("UPDATE requests SET head_seq = :c, head_hash = :h WHERE id = :id"),
                     {"c": count, "h": h, "id": rid})
    op.create_table('audit_checkpoints',
                    sa.Column('n', sa.Integer(), autoincrement=False, nullable=False),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('body', sa.Text(), nullable=False),
                    sa.Column('heads', sa.Text(), nullable=False),
                    sa.Column('signature', sa.String(length=128), nullable=False),
                    sa.PrimaryKeyConstraint('n'))
    _append_only('audit_checkpoints')


def downgrade() -> None:
    conn = op.get_bind()
    _drop_append_only('audit_checkpoints')
    op.drop_table('audit_checkpoints')
    rows = [dict(r._mapping) for r in conn.execute(sa.text(
        "SELECT seq, request_id, type, trigger, from_state, to_state, version, actor, at, payload "
        "FROM audit_events ORDER BY seq"))]
    _drop_append_only('audit_events')
    op.drop_table('audit_events')
    old = op.create_table(
        'audit_events',
        sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('type', sa.String(length=40), nullable=False),
        sa.Column('trigger', sa.String(length=20), nullable=True),
        sa.Column('from_state', sa.String(length=20), nullable=True),
        sa.Column('to_state', sa.String(length=20), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('actor', sa.String(length=320), nullable=False),
        sa.Column('at', sa.String(length=40), nullable=False),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('seq'))
    op.create_index('ix_audit_request_seq', 'audit_events', ['request_id', 'seq'], unique=False)
    prev, newest = GENESIS, {}
    for n, r in enumerate(rows, start=1):
        r.update(seq=n, prev_hash=prev)
        r["hash"] = prev = _old_hash(prev, r)
        newest[r["request_id"]] = n
    for start in range(0, len(rows), 1000):
        conn.execute(sa.insert(old), rows[start:start + 1000])
    _append_only('audit_events')
    with op.batch_alter_table('requests') as batch:
        batch.drop_column('head_mac')
        batch.drop_column('head_hash')
    for rid, seq in newest.items():
        conn.execute(sa.text("UPDATE requests SET head_seq = :s WHERE id = :id"), {"s": seq, "id": rid})
