"""The SLA clock summaries on SQL: the lines the store appends to ``requests.sla_entries`` with every
audit event (``states.sla.clock_lines``), the owners' names, and whether a checkpoint needs review —
one row per request, no document and no history read (``RequestStore.sla_heads``/``sla_summaries``)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection, exists, select

from connectors.db.tables import checkpoints, requests
from connectors.ports import ClockSummary
from states.lifecycle import NON_TERMINAL

NEEDS_REVIEW = "needs_review"  # states.checkpoints.CheckpointStatus.NEEDS_REVIEW
_OPEN = [s.value for s in NON_TERMINAL]
_BATCH = 1000
_REVIEW = exists().where(checkpoints.c.request_id == requests.c.id, checkpoints.c.status == NEEDS_REVIEW)
_SUMMARY = select(requests.c.id, requests.c.title, requests.c.state, requests.c.head_seq, requests.c.owners,
                  requests.c.owner_names, requests.c.sla_entries, _REVIEW.label("needs_review"))


def heads(conn: Connection, open_only: bool) -> dict[int, int]:
    query = select(requests.c.id, requests.c.head_seq)
    if open_only:
        query = query.where(requests.c.state.in_(_OPEN))
    return {int(i): int(h) for i, h in conn.execute(query)}


def needs_review(conn: Connection) -> set[int]:
    query = select(checkpoints.c.request_id).distinct().where(checkpoints.c.status == NEEDS_REVIEW)
    return {int(i) for i in conn.execute(query).scalars()}


def summaries(conn: Connection, ids: Sequence[int]) -> list[ClockSummary]:
    wanted = sorted(set(ids))
    found: list[ClockSummary] = []
    for i in range(0, len(wanted), _BATCH):
        rows = conn.execute(_SUMMARY.where(requests.c.id.in_(wanted[i:i + _BATCH])).order_by(requests.c.id))
        found += [ClockSummary(int(r.id), r.title, r.state, int(r.head_seq), tuple(json.loads(r.owners or "[]")),
                               json.loads(r.owner_names or "{}"), r.sla_entries or "", bool(r.needs_review))
                  for r in rows]
    return found
