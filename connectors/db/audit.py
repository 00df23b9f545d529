"""The tamper-evident audit chain in the database.

Every event row carries ``hash = sha256(prev_hash ‖ canonical JSON of the event)``; the rules
(``FIELDS``, ``canonical_json``, ``event_hash``) live in :mod:`connectors.audit_chain`, shared with
the in-memory store. Rows are append-only (database triggers refuse UPDATE and DELETE),
and :func:`verify` still catches a tamperer who removed the triggers: it walks
the chain in ``seq`` order and names the first broken link.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select

from connectors.audit_chain import FIELDS as FIELDS
from connectors.audit_chain import GENESIS as GENESIS
from connectors.audit_chain import canonical_json as canonical_json
from connectors.audit_chain import event_hash as event_hash
from connectors.db.tables import audit_events, requests
from connectors.ports import AuditRecord as AuditRecord
from connectors.ports import VerifyReport as VerifyReport


def to_record(row: Any) -> AuditRecord:
    m = row._mapping
    return AuditRecord(seq=m["seq"], request_id=m["request_id"], type=m["type"], trigger=m["trigger"],
                       from_state=m["from_state"], to_state=m["to_state"], version=m["version"],
                       actor=m["actor"], at=m["at"], payload=json.loads(m["payload"]),
                       prev_hash=m["prev_hash"], hash=m["hash"])


# Built once: constructing a Core statement per call costs more than running it (bench/transitions.py).
_HEAD = select(audit_events.c.seq, audit_events.c.hash).order_by(audit_events.c.seq.desc()).limit(1)
_INSERT = insert(audit_events)


def chain_head(conn: Connection) -> tuple[int, str]:
    """(seq, hash) of the newest event. Call inside a write transaction (it holds the chain lock)."""
    row = conn.execute(_HEAD).first()
    return (row[0], row[1]) if row else (0, GENESIS)


# The chain head as two scalar subqueries, for callers that fold it into a query they run anyway.
HEAD_SEQ = select(audit_events.c.seq).order_by(audit_events.c.seq.desc()).limit(1).scalar_subquery()
HEAD_HASH = select(audit_events.c.hash).order_by(audit_events.c.seq.desc()).limit(1).scalar_subquery()


def append(conn: Connection, rows: Sequence[dict[str, Any]], head: tuple[int, str] | None = None) -> int:
    """Chain and insert ``rows`` (without seq/prev_hash/hash); return the last seq.

    ``head`` is the chain head when the caller already read it in this write transaction."""
    seq, prev = head if head is not None else chain_head(conn)
    chained = []
    for row in rows:
        seq += 1
        full = {**row, "seq": seq, "prev_hash": prev}
        full["hash"] = prev = event_hash(prev, full)
        chained.append(full)
    if chained:
        conn.execute(_INSERT, chained)
    return seq


def _rows(conn: Connection, batch: int = 5000) -> Iterator[Any]:
    last = -1
    while True:
        chunk = conn.execute(
            select(*[audit_events.c[f] for f in (*FIELDS, "prev_hash", "hash")])
            .where(audit_events.c.seq > last).order_by(audit_events.c.seq).limit(batch)
        ).all()
        if not chunk:
            return
        yield from chunk
        last = chunk[-1].seq


def verify(engine: Engine, progress: Iterable[None] | None = None) -> VerifyReport:
    """Walk the whole chain; report the first broken link, or ok."""
    checked = 0
    heads: dict[int, int] = {}
    with engine.connect() as conn:
        expected_seq, prev = 1, GENESIS
        for row in _rows(conn):
            m = dict(row._mapping)
            checked += 1
            if m["seq"] != expected_seq:
                return VerifyReport(False, checked, 0, expected_seq, None,
                                    f"event {expected_seq} is missing (next found is {m['seq']}): "
                                    "events were deleted or renumbered")
            if m["prev_hash"] != prev:
                return VerifyReport(False, checked, 0, m["seq"], m["request_id"],
                                    f"event {m['seq']} does not link to event {m['seq'] - 1}: "
                                    "an event before it was altered, inserted or reordered")
            if event_hash(prev, m) != m["hash"]:
                return VerifyReport(False, checked, 0, m["seq"], m["request_id"],
                                    f"event {m['seq']} was altered: its content no longer matches its hash")
            prev = m["hash"]
            heads[m["request_id"]] = m["seq"]
            expected_seq += 1
        # A request's row remembers its newest event: catches events cut off the end of the chain
        # and events appended for a request behind its back.
        n_requests = 0
        for req_id, head_seq in conn.execute(select(requests.c.id, requests.c.head_seq).order_by(requests.c.id)):
            n_requests += 1
            found = heads.get(req_id)
            if found != head_seq:
                # Name the first broken event: the first one missing (the walk above ended at event
                # `checked`, so a cut-off tail starts right after it), or the first one added behind
                # the request's back.
                if found is None or found < head_seq:
                    broken = min(head_seq, checked + 1)
                    what = f"its newest event {head_seq} is missing from the chain" + (
                        f" (the chain ends at event {checked}: events from {broken} on were cut off)"
                        if head_seq > checked else "")
                else:
                    broken = conn.execute(select(func.min(audit_events.c.seq)).where(
                        audit_events.c.request_id == req_id, audit_events.c.seq > head_seq)).scalar_one()
                    what = f"event {broken} was added after its newest recorded event {head_seq}"
                return VerifyReport(False, checked, n_requests, broken, req_id, f"request {req_id}: {what}")
        orphans = set(heads) - {r for (r,) in conn.execute(select(requests.c.id))}
        if orphans:
            req = min(orphans)
            return VerifyReport(False, checked, n_requests, heads[req], req,
                                f"events exist for request {req}, which is not in the requests table")
    return VerifyReport(True, checked, n_requests)


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_events)).scalar_one())
