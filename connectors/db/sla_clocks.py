"""The SLA clock summaries on SQL: the lines the store appends to ``requests.sla_entries`` with every
audit event (``states.sla.clock_lines``), the owners' names, and whether a checkpoint needs review —
one row per request, no document and no history read (``RequestStore.sla_heads``/``sla_summaries``);
and the cache of their outcomes under a policy digest (``sla_outcomes``, written by the reads)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection, Engine, exists, select, text

from connectors.db.engine import read_transaction, write_transaction
from connectors.db.tables import checkpoints, requests, sla_outcomes
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


def outcomes(conn: Connection, digest: str) -> dict[int, tuple[int, str]]:
    query = select(sla_outcomes.c.request_id, sla_outcomes.c.head_seq, sla_outcomes.c.outcome).where(
        sla_outcomes.c.digest == digest)
    return {int(i): (int(h), o) for i, h, o in conn.execute(query)}


_KEEP = text("INSERT INTO sla_outcomes (request_id, digest, head_seq, outcome) VALUES (:i, :d, :h, :o) "
             "ON CONFLICT (request_id) DO UPDATE SET digest = excluded.digest, head_seq = excluded.head_seq, "
             "outcome = excluded.outcome")


def keep(conn: Connection, digest: str, rows: Sequence[tuple[int, int, str]]) -> None:
    """Replace the outcomes of ``rows`` (request id, head_seq, outcome) with these, under ``digest`` (an
    upsert: two readers filling the cache at once both succeed, the later one's rows stand)."""
    values = [{"i": i, "d": digest, "h": h, "o": o} for i, h, o in rows]
    for i in range(0, len(values), 5000):
        conn.execute(_KEEP, values[i:i + 5000])


class SlaClockQueries:
    """``SqlStore``'s SLA clock reads (``RequestStore.sla_heads`` … ``keep_sla_outcomes``)."""

    engine: Engine

    def sla_heads(self, open_only: bool = True) -> dict[int, int]:
        with read_transaction(self.engine) as conn:
            return heads(conn, open_only)

    def needs_review_ids(self) -> set[int]:
        with read_transaction(self.engine) as conn:
            return needs_review(conn)

    def sla_summaries(self, ids: Sequence[int]) -> list[ClockSummary]:
        with read_transaction(self.engine) as conn:
            return summaries(conn, ids)

    def sla_outcomes(self, digest: str) -> dict[int, tuple[int, str]]:
        with read_transaction(self.engine) as conn:
            return outcomes(conn, digest)

    def keep_sla_outcomes(self, digest: str, rows: Sequence[tuple[int, int, str]]) -> None:
        with write_transaction(self.engine) as conn:
            keep(conn, digest, rows)
