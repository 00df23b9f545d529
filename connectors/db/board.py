"""The board's reads on SQL: counts per column, one page of cards and the sponsors, from the card
columns the store keeps on ``requests`` (no document, no history); a request's newest events.

The page runs through the columns in the board's order; which columns it spans follows from the
counts (the ``request_counts`` the store keeps when nothing but states is filtered, else one grouped
query), and each spanned column is read by ``(state, updated_at)`` — the index
``ix_requests_state_updated`` — newest change first, ``LIMIT``/``OFFSET`` inside that column only.
Measured in ``bench/web.py``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Integer, and_, bindparam, column, exists, func, or_, select, text

from connectors.db import audit
from connectors.db.engine import is_sqlite
from connectors.db.tables import audit_events, checkpoints, request_counts, requests
from connectors.ports import AuditRecord, BoardPage, BoardQuery, BoardRow

SENT, NEEDS_REVIEW = "sent", "needs_review"  # states.checkpoints.CheckpointStatus values

_CARD = select(requests.c.id, requests.c.title, requests.c.state, requests.c.version, requests.c.requester_email,
               requests.c.sponsor_email, requests.c.updated_at, requests.c.in_state_since, requests.c.owners,
               requests.c.next_action, requests.c.missing)
_RECENT = (select(audit_events).where(audit_events.c.request_id == bindparam("request_id"))
           .order_by(audit_events.c.seq.desc()).limit(bindparam("limit")))
_COUNTS = select(request_counts.c.state, request_counts.c.n)
_COUNT = select(func.count()).select_from(audit_events).where(audit_events.c.request_id == bindparam("request_id"))


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def conditions(q: BoardQuery, sqlite: bool) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if q.states:
        conds.append(requests.c.state.in_(list(q.states)))
    if q.requester:
        conds.append(requests.c.requester_email == q.requester.lower())
    if q.sponsor:
        conds.append(requests.c.sponsor_email == q.sponsor.lower())
    if q.owner:
        conds.append(requests.c.owners.contains(json.dumps(q.owner.lower()), autoescape=True))
    if q.text:
        title = func.lower(requests.c.title).contains(q.text.lower(), autoescape=True)
        conds.append(or_(title, requests.c.id == int(q.text)) if q.text.isdigit() and len(q.text) < 10 else title)
    if q.needs_attention_before is not None:
        waiting = exists().where(checkpoints.c.request_id == requests.c.id, or_(
            checkpoints.c.status == NEEDS_REVIEW,
            and_(checkpoints.c.status == SENT, checkpoints.c.sent_at < q.needs_attention_before)))
        conds.append(or_(waiting, _among(q.attention_ids, sqlite)) if q.attention_ids else waiting)
    return conds


def _among(ids: Sequence[int], sqlite: bool) -> ColumnElement[bool]:
    """``requests.id`` among ``ids``, as one JSON parameter: an ``IN`` of 10,000 binds (the attention filter's
    late clocks at 100,000 requests) cost more to build and send than the query to run."""
    rows = ("SELECT value FROM json_each(:among)" if sqlite else
            "SELECT CAST(value AS integer) FROM jsonb_array_elements_text(CAST(:among AS jsonb))")
    return requests.c.id.in_(text(rows).bindparams(among=json.dumps(list(ids))).columns(column("value", Integer)))


def spans(order: list[str], counts: dict[str, int], offset: int, limit: int) -> list[tuple[str, int, int]]:
    """(state, offset in its column, how many) of each column the page ``offset``…``offset+limit`` covers."""
    found: list[tuple[str, int, int]] = []
    start = 0
    for state in order:
        n = counts.get(state, 0)
        lo, hi = max(offset, start), min(offset + limit, start + n)
        if lo < hi:
            found.append((state, lo - start, hi - lo))
        start += n
    return found


def _row(r: Any, open_checkpoints: tuple[tuple[str, str, str, datetime | None], ...]) -> BoardRow:
    updated = _utc(r.updated_at)
    return BoardRow(id=r.id, title=r.title, state=r.state, version=r.version, requester=r.requester_email,
                    sponsor=r.sponsor_email, updated_at=updated,
                    in_state_since=_utc(r.in_state_since) if r.in_state_since is not None else updated,
                    owners=tuple(json.loads(r.owners or "[]")), next_action=r.next_action or "",
                    missing=tuple(json.loads(r.missing or "[]")), open_checkpoints=open_checkpoints)


def board(conn: Connection, q: BoardQuery) -> BoardPage:
    conds = conditions(q, is_sqlite(conn.engine))
    where = and_(*conds) if conds else None
    counted = select(requests.c.state, func.count()).group_by(requests.c.state)
    sponsors = select(requests.c.sponsor_email).distinct().order_by(requests.c.sponsor_email)
    if where is not None:
        counted, sponsors = counted.where(where), sponsors.where(where)
    if q.requester or q.sponsor or q.owner or q.text or q.needs_attention_before is not None:
        counts = {state: int(n) for state, n in conn.execute(counted).all()}
    else:  # the counts the store keeps, not 100,000 rows counted
        counts = {state: int(n) for state, n in conn.execute(_COUNTS).all()
                  if n > 0 and (not q.states or state in q.states)}
    order = [s for s in q.order if s in counts]
    raw: list[Any] = []
    for state, offset, limit in spans(order, counts, q.offset, q.limit):
        query = _CARD.where(requests.c.state == state, *conds).order_by(
            requests.c.updated_at.desc(), requests.c.id.desc()).limit(limit).offset(offset)
        raw += conn.execute(query).all()
    opened: dict[int, list[tuple[str, str, str, datetime | None]]] = {}
    if raw:
        for c in conn.execute(select(checkpoints.c.request_id, checkpoints.c.item_id, checkpoints.c.offset,
                                     checkpoints.c.status, checkpoints.c.sent_at)
                              .where(checkpoints.c.request_id.in_([r.id for r in raw]),
                                     checkpoints.c.status.in_([SENT, NEEDS_REVIEW]))
                              .order_by(checkpoints.c.key)):
            sent = _utc(c.sent_at) if c.sent_at is not None else None
            opened.setdefault(c.request_id, []).append((c.item_id, c.offset, c.status, sent))
    return BoardPage(counts=counts, rows=[_row(r, tuple(opened.get(r.id, ()))) for r in raw],
                     sponsors=list(conn.execute(sponsors).scalars()))


def recent_history(conn: Connection, request_id: int, limit: int) -> tuple[list[AuditRecord], int]:
    rows = conn.execute(_RECENT, {"request_id": request_id, "limit": limit}).all()
    total = len(rows) if len(rows) < limit else int(conn.execute(_COUNT, {"request_id": request_id}).scalar_one())
    return [audit.to_record(r) for r in reversed(rows)], total
