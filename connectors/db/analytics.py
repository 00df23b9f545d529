"""The analytics tracks (:class:`states.analytics.Track`) computed by SQL over ``audit_events``.

Five aggregate queries, the same on SQLite and PostgreSQL but for the JSON and time functions
(``_Dialect``): one row per request of stage flags, first/latest times and distinct checkpoint counts;
the time spent in each state (``LEAD`` over the transitions); the latest diagnosis, redirect and
measurement of each request with the fields they carry; the latest measurement's item verdicts; the plan
items' levels. :func:`states.analytics.walk` over the same events is the oracle: both must give equal
tracks (``tests/integration/test_analytics_sql.py``). Read-only, in one read transaction (a snapshot).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, text

from connectors.db.engine import is_sqlite, read_transaction, write_transaction
from connectors.db.tables import analytics_facts, analytics_outcomes, analytics_tracks
from states.analytics import (
    CAUSES,
    CHECKPOINT_TYPES,
    CLOSING_TYPES,
    STAGES,
    TRANSITION_TYPES,
    ItemOutcome,
    Track,
    track_from,
    track_json,
)
from states.analytics_summary import columns


@dataclass(frozen=True)
class _Dialect:
    json_text: str  # "{col}" and "{path}" ('a.b.c')
    seconds: str  # "{start}", "{end}"
    items: str  # a table expression of the array "{col}" at "{path}" as rows r(value)
    item_text: str  # "{key}" of r.value

    def get(self, col: str, path: str) -> str:
        return self.json_text.format(col=col, path=path)


_SQLITE = _Dialect(json_text="json_extract({col}, '$.{path}')",
                   seconds="round((julianday({end}) - julianday({start})) * 86400.0, 3)",
                   items="json_each({col}, '$.{path}') AS r", item_text="json_extract(r.value, '$.{key}')")
_POSTGRES = _Dialect(json_text="(CAST({col} AS jsonb) #>> '{{{path_pg}}}')",
                     seconds="round(CAST(extract(epoch FROM (CAST({end} AS timestamptz) - "
                             "CAST({start} AS timestamptz))) AS numeric), 3)",
                     items="jsonb_array_elements(CAST({col} AS jsonb) -> '{path}') AS r(value)",
                     item_text="(r.value ->> '{key}')")


def _get(d: _Dialect, col: str, path: str) -> str:
    if d is _POSTGRES:
        return d.json_text.format(col=col, path_pg=path.replace(".", ","))
    return d.get(col, path)


def _quoted(names: Any) -> str:
    return ", ".join(f"'{n}'" for n in sorted(names))


# the requests whose newest event is after :since. Left out for a full pass: an IN list of every request
# makes SQLite look each one up instead of scanning (4x slower).
_SCOPE = "request_id IN (SELECT DISTINCT request_id FROM audit_events WHERE seq > :since)"
_ALL = "1 = 1"


def _main(d: _Dialect, scope: str) -> str:
    ck = _get(d, "e.payload", "checkpoint")
    stages = ",\n".join(f"MAX(CASE WHEN e.to_state = '{s.value}' THEN 1 ELSE 0 END) AS r_{s.value}" for s in STAGES)
    counts = ",\n".join(f"COUNT(DISTINCT CASE WHEN e.type = '{t}' THEN {ck} END) AS {name}"
                        for t, name in CHECKPOINT_TYPES.items())
    return f"""
SELECT e.request_id AS id,
  MIN(CASE WHEN e.type = 'submitted' THEN e.at END) AS received_at,
  {stages},
  MAX(CASE WHEN e.type = 'designed' THEN e.seq END) AS design_seq,
  MAX(CASE WHEN e.type = 'redirected' THEN e.seq END) AS redirect_seq,
  MIN(CASE WHEN e.type = 'plan_approved' THEN e.at END) AS plan_approved_at,
  MAX(CASE WHEN e.type = 'delivered' THEN e.at END) AS delivered_at,
  MAX(CASE WHEN e.type = 'result_recorded' THEN e.at END) AS last_result_at,
  {counts},
  COUNT(DISTINCT CASE WHEN e.type IN ({_quoted(CLOSING_TYPES)}) THEN {ck} END) AS closed
FROM audit_events e WHERE {scope} GROUP BY e.request_id"""


def _stays(d: _Dialect, scope: str) -> str:
    secs = d.seconds.format(start="s.at", end="s.next_at")
    return f"""
SELECT s.request_id, s.state, SUM({secs}) AS secs FROM (
  SELECT request_id, at, COALESCE(to_state, 'received') AS state,
         LEAD(at) OVER (PARTITION BY request_id ORDER BY seq) AS next_at
  FROM audit_events
  WHERE {scope} AND (type = 'submitted' OR (type IN ({_quoted(TRANSITION_TYPES)}) AND to_state IS NOT NULL))
) s WHERE s.next_at IS NOT NULL GROUP BY s.request_id, s.state"""


_LATEST = """SELECT MAX(seq) AS s FROM audit_events WHERE type IN ({types}) AND {scope}
             GROUP BY request_id, CASE WHEN type = 'rediagnosed' THEN 'diagnosed' ELSE type END"""


def _latest(d: _Dialect, scope: str) -> str:
    def when(t: str, expr: str) -> str:
        return f"CASE WHEN e.type = '{t}' THEN {expr} END"
    causes = ",\n".join(f"{when('diag', _get(d, 'e.payload', f'diagnosis.cause_checks.{c}.answer'))} AS c_{c}"
                        for c in CAUSES).replace("e.type = 'diag'", "e.type IN ('diagnosed', 'rediagnosed')")
    roi = ",\n".join(f"{when('measured', _get(d, 'e.payload', f'roi.{k}'))} AS roi_{k}"
                     for k in ("currency", "isolated_benefits", "not_isolated_benefits", "costs"))
    return f"""
SELECT e.request_id, e.type, e.seq, {when('redirected', _get(d, 'e.payload', 'redirect.kind'))} AS kind,
  {causes},
  {roi}
FROM audit_events e JOIN ({_LATEST.format(types="'redirected', 'diagnosed', 'rediagnosed', 'measured'", scope=scope)}) l
  ON e.seq = l.s"""


def _verdicts(d: _Dialect, scope: str) -> str:
    return f"""
SELECT e.request_id, {d.item_text.format(key='item_id')} AS item, {d.item_text.format(key='outcome')} AS outcome
FROM audit_events e JOIN ({_LATEST.format(types="'measured'", scope=scope)}) l ON e.seq = l.s
CROSS JOIN {d.items.format(col='e.payload', path='results')}"""


def _levels(d: _Dialect, scope: str) -> str:
    return f"""
SELECT e.request_id, e.seq, {d.item_text.format(key='id')} AS item, {d.item_text.format(key='framework')} AS fw,
       {d.item_text.format(key='level')} AS level
FROM audit_events e CROSS JOIN {d.items.format(col=_get_plan(d), path='plan.items' if d is _SQLITE else 'items')}
WHERE e.type IN ('plan_drafted', 'plan_revised') AND {scope}
ORDER BY e.seq"""


def _get_plan(d: _Dialect) -> str:
    return "e.payload" if d is _SQLITE else "CAST(e.payload AS jsonb) -> 'plan'"


def _money(value: Any) -> float:
    return round(float(value), 2) if value is not None else 0.0


_STALE = ("SELECT r.id FROM requests r LEFT JOIN analytics_facts a ON a.request_id = r.id "
          "WHERE a.request_id IS NULL OR a.head_seq <> r.head_seq")
# A row's head_seq is never above its request's (a head only grows; a row is written at its snapshot's),
# and requests are never deleted: equal counts and equal sums mean every row is current (two index scans).
_CURRENT = ("SELECT (SELECT count(*) FROM requests) = (SELECT count(*) FROM analytics_facts) AND "
            "(SELECT coalesce(sum(head_seq), 0) FROM requests) = "
            "(SELECT coalesce(sum(head_seq), 0) FROM analytics_facts)")
# the requests named by a JSON list :ids (looked up by request, not a scan: the refresh after a few writes)
_IDS = {True: "request_id IN (SELECT value FROM json_each(:ids))",
        False: "request_id IN (SELECT CAST(value AS integer) FROM jsonb_array_elements_text(CAST(:ids AS jsonb)))"}


def refresh(engine: Engine) -> int:
    """Bring the ``analytics_tracks`` cache up to date; returns how many requests were recomputed. The
    requests whose ``head_seq`` moved on since their row was written (or that have none) are computed by
    the aggregates (all five, scoped to them; a full pass when none is cached) and their rows (the
    track, its columns, its verdicts in ``analytics_outcomes``) replaced. A row is written with the
    head_seq its track was computed at, in the same read snapshot, so a request that changes meanwhile
    is stale again next time."""
    d = _SQLITE if is_sqlite(engine) else _POSTGRES
    with read_transaction(engine) as conn:
        current = bool(conn.execute(text(_CURRENT)).scalar_one())
        stale = [] if current else [int(r[0]) for r in conn.execute(text(_STALE))]
        fresh: list[Track] = []
        heads: dict[int, int] = {}
        if stale:
            total = conn.execute(text("SELECT count(*) FROM requests")).scalar_one()
            # most of them: one pass over every event beats looking each request up
            scope = _ALL if len(stale) * 4 > total else _IDS[d is _SQLITE]
            fresh = _tracks(conn, d, {"since": 0, "ids": json.dumps(stale)}, scope, heads)
    if fresh:
        with write_transaction(engine) as conn:
            ids = [t.request_id for t in fresh]
            for i in range(0, len(ids), 500):
                for table in (analytics_tracks, analytics_facts, analytics_outcomes):
                    conn.execute(delete(table).where(table.c.request_id.in_(ids[i:i + 500])))
            rows = [{"request_id": t.request_id, "head_seq": heads[t.request_id], "track": json.dumps(
                track_json(t), separators=(",", ":"))} for t in fresh]
            facts = [{"request_id": t.request_id, "head_seq": heads[t.request_id], **columns(t)} for t in fresh]
            for i in range(0, len(rows), 5000):
                conn.execute(insert(analytics_tracks), rows[i:i + 5000])
                conn.execute(insert(analytics_facts), facts[i:i + 5000])
            verdicts = [{"request_id": f["request_id"], "day": f["day"], "sponsor": f["sponsor"], "path": f["path"],
                         "kind": f["kind"], "framework": o.framework, "level": o.level, "outcome": o.outcome}
                        for t, f in zip(fresh, facts, strict=True) for o in t.outcomes]
            for i in range(0, len(verdicts), 5000):
                conn.execute(insert(analytics_outcomes), verdicts[i:i + 5000])
            if d is _POSTGRES and len(fresh) > 1000:  # the planner's statistics of the new rows (no autovacuum yet)
                conn.execute(text("ANALYZE analytics_facts, analytics_outcomes"))
    return len(fresh)


def cached(engine: Engine) -> list[Track]:
    """Every request's track through the ``analytics_tracks`` cache (:func:`refresh`, then read back)."""
    refresh(engine)
    with read_transaction(engine) as conn:
        return [track_from(json.loads(r[0])) for r in conn.execute(text(
            "SELECT t.track FROM analytics_tracks t JOIN requests r ON r.id = t.request_id ORDER BY t.request_id"))]


def tracks(engine: Engine, since: int = 0) -> list[Track]:
    """The tracks of the requests whose newest event is after ``since`` (every request for 0), computed by
    the database in one read transaction."""
    d = _SQLITE if is_sqlite(engine) else _POSTGRES
    with read_transaction(engine) as conn:
        return _tracks(conn, d, {"since": since}, _SCOPE if since else _ALL, {})


def _tracks(conn: Connection, d: _Dialect, since: dict[str, Any], scope: str, heads: dict[int, int]) -> list[Track]:
    """The tracks of the requests ``scope`` names; ``heads`` gets each one's head_seq (the same snapshot)."""
    now = {}
    for r in conn.execute(text("SELECT id, state, sponsor_email AS sponsor, head_seq FROM requests WHERE "
                               + scope.replace("request_id", "id", 1)), since):
        now[r.id] = (r.state, (r.sponsor or "").lower())
        heads[r.id] = int(r.head_seq)
    stays: dict[int, dict[str, float]] = defaultdict(dict)
    for r in conn.execute(text(_stays(d, scope)), since):
        stays[r.request_id][r.state] = round(float(r.secs), 1)
    latest: dict[int, dict[str, Any]] = defaultdict(dict)
    for r in conn.execute(text(_latest(d, scope)), since):
        latest[r.request_id][r.type if r.type != "rediagnosed" else "diagnosed"] = (r.seq, r)
    levels: dict[int, dict[str, tuple[str, int]]] = defaultdict(dict)
    for r in conn.execute(text(_levels(d, scope)), since):
        levels[r.request_id][str(r.item or "")] = (str(r.fw or ""), int(r.level or 0))
    verdicts: dict[int, list[ItemOutcome]] = defaultdict(list)
    for r in conn.execute(text(_verdicts(d, scope)), since):
        item = str(r.item or "")
        framework, level = levels[r.request_id].get(item, ("", 0))
        verdicts[r.request_id].append(ItemOutcome(item, framework, level, str(r.outcome or "no_data")))
    out = []
    for r in conn.execute(text(_main(d, scope) + " ORDER BY e.request_id"), since):
        if r.id not in now:
            continue  # an event newer than the requests read (not in this snapshot's scope)
        state, sponsor = now[r.id]
        design, redirect = r.design_seq or 0, r.redirect_seq or 0
        path = "" if not (design or redirect) else ("redirect" if redirect > design else "design")
        mine = latest.get(r.id, {})
        diag = mine.get("diagnosed", (0, None))[1]
        measured = mine.get("measured", (0, None))[1]
        kind = mine.get("redirected", (0, None))[1]
        out.append(Track(
            request_id=r.id, received_at=r.received_at or "", sponsor=sponsor, state=state,
            reached=frozenset(s.value for s in STAGES if getattr(r, f"r_{s.value}")), path=path,
            redirect_kind=str(kind.kind or "") if kind is not None and path == "redirect" else "",
            causes=tuple(sorted(c for c, bad in CAUSES.items() if diag is not None
                                and getattr(diag, f"c_{c}") == bad)),
            time_in=tuple(sorted(stays.get(r.id, {}).items())),
            plan_approved_at=r.plan_approved_at or "", delivered_at=r.delivered_at or "",
            last_result_at=r.last_result_at or "",
            **{name: int(getattr(r, name) or 0) for name in (*CHECKPOINT_TYPES.values(), "closed")},
            outcomes=tuple(sorted(verdicts.get(r.id, []), key=lambda o: o.item)),
            roi_currency=str(measured.roi_currency or "") if measured is not None else "",
            isolated_benefits=_money(measured.roi_isolated_benefits) if measured is not None else 0.0,
            not_isolated_benefits=_money(measured.roi_not_isolated_benefits) if measured is not None else 0.0,
            costs=_money(measured.roi_costs) if measured is not None else 0.0))
    return out
