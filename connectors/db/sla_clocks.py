"""The SLA clock summaries on SQL: the lines the store appends to ``requests.sla_entries`` with every
audit event (``states.sla.clock_lines``), the owners' names, and whether a checkpoint needs review —
one row per request, no document and no history read (``RequestStore.sla_heads``/``sla_summaries``);
and the cache of their outcomes under a policy digest (``sla_outcomes``, written by the reads): which
requests have none at their head (``sla_stale``), the ones whose running runs may be near at a time
(``sla_due``, on the narrow ``quiet`` column), and for the analytics section the same under the filter
and the stopped runs' breached SLAs counted per group of its requests (``sla_section``:
``analytics_facts`` under the figures' ``WHERE``)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection, Engine, exists, select, text

from connectors.db.analytics_summary import where
from connectors.db.engine import is_sqlite, read_transaction, write_transaction
from connectors.db.tables import checkpoints, requests, sla_outcomes
from connectors.ports import ClockSummary, DueClock
from states.analytics_figures import Filter
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


def _open(open_only: bool) -> str:
    return f" AND r.state IN ({', '.join(repr(s) for s in _OPEN)})" if open_only else ""


def stale(conn: Connection, digest: str, open_only: bool) -> dict[int, int]:
    if not open_only and _all_current(conn, digest):
        return {}
    query = ("SELECT r.id, r.head_seq FROM requests r LEFT JOIN sla_outcomes o ON o.request_id = r.id "
             "WHERE (o.request_id IS NULL OR o.digest <> :d OR o.head_seq <> r.head_seq)" + _open(open_only))
    return {int(i): int(h) for i, h in conn.execute(text(query), {"d": digest})}


def _all_current(conn: Connection, digest: str) -> bool:
    """Whether every request has its outcome under ``digest`` at its head, without a join: an outcome row
    (one per request) is written at a head its request had, and heads only grow, so as many rows under
    the digest as requests with the same sum of heads means each row is at its request's head. One
    statement, so one snapshot on PostgreSQL too (READ COMMITTED gives each statement its own)."""
    n, total, kept, kept_total = conn.execute(text(
        "SELECT r.n, r.s, o.n, o.s FROM (SELECT count(*) AS n, coalesce(sum(head_seq), 0) AS s FROM requests) r, "
        "(SELECT count(*) AS n, coalesce(sum(head_seq), 0) AS s FROM sla_outcomes WHERE digest = :d) o"),
        {"d": digest}).one()
    return (int(n), int(total)) == (int(kept), int(kept_total))


def due(conn: Connection, digest: str, until: int, open_only: bool, flt: Filter | None) -> list[DueClock]:
    """The (open) requests whose outcome under ``digest`` is at their head and past its quiet time; with
    ``flt`` (the analytics section, which only counts their clocks) those among its requests, without
    their titles, owners and names."""
    params: dict[str, object] = {"d": digest, "until": until}
    columns, join, cond = ", r.title, r.owners, r.owner_names", "", ""
    if flt is not None:
        cond, extra = where(flt, is_sqlite(conn.engine))
        columns, join, cond = "", " JOIN analytics_facts a ON a.request_id = r.id", f" AND {cond}"
        params.update(extra)
    query = (f"SELECT r.id, o.head_seq, o.outcome{columns} FROM sla_outcomes o "
             f"JOIN requests r ON r.id = o.request_id{join} WHERE o.digest = :d AND o.head_seq = r.head_seq "
             f"AND o.quiet <= :until{cond}" + _open(open_only) + " ORDER BY r.id")
    rows = conn.execute(text(query), params)
    if flt is not None:
        return [DueClock(int(i), int(h), o, "", (), {}) for i, h, o in rows]
    return [DueClock(int(i), int(h), o, t, tuple(json.loads(w or "[]")), json.loads(n or "{}"))
            for i, h, o, t, w, n in rows]


def stopped(conn: Connection, digest: str, flt: Filter) -> list[tuple[str, int]]:
    cond, params = where(flt, is_sqlite(conn.engine))
    query = ("SELECT coalesce(o.stopped, ''), count(*) FROM analytics_facts a LEFT JOIN sla_outcomes o "
             f"ON o.request_id = a.request_id AND o.digest = :d WHERE {cond} GROUP BY coalesce(o.stopped, '')")
    return [(str(s), int(n)) for s, n in conn.execute(text(query), {**params, "d": digest})]


_KEEP = text("INSERT INTO sla_outcomes (request_id, digest, head_seq, outcome, quiet, stopped) "
             "VALUES (:i, :d, :h, :o, :q, :s) "
             "ON CONFLICT (request_id) DO UPDATE SET digest = excluded.digest, head_seq = excluded.head_seq, "
             "outcome = excluded.outcome, quiet = excluded.quiet, stopped = excluded.stopped")


def keep(conn: Connection, digest: str, rows: Sequence[tuple[int, int, str, int | None, str]]) -> None:
    """Replace the outcomes of ``rows`` (request id, head_seq, outcome, quiet, stopped) with these, under
    ``digest`` (an upsert: two readers filling the cache at once both succeed, the later one's rows stand)."""
    values = [{"i": i, "d": digest, "h": h, "o": o, "q": q, "s": s} for i, h, o, q, s in rows]
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

    def sla_stale(self, digest: str, open_only: bool = True) -> dict[int, int]:
        with read_transaction(self.engine) as conn:
            return stale(conn, digest, open_only)

    def sla_due(self, digest: str, until: int, open_only: bool = True) -> list[DueClock]:
        with read_transaction(self.engine) as conn:
            return due(conn, digest, until, open_only, None)

    def sla_section(self, digest: str, until: int,
                    flt: Filter) -> tuple[list[DueClock], list[tuple[str, int]]]:
        with read_transaction(self.engine) as conn:  # both in one read transaction
            return due(conn, digest, until, False, flt), stopped(conn, digest, flt)

    def keep_sla_outcomes(self, digest: str, rows: Sequence[tuple[int, int, str, int | None, str]]) -> None:
        with write_transaction(self.engine) as conn:
            keep(conn, digest, rows)
