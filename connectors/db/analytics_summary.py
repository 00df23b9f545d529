"""The figures' :class:`states.analytics_summary.Summary` by ``GROUP BY`` queries over the track cache.

``analytics_facts`` holds, beside each request's track (``analytics_tracks``, written together), the
values the figures group and sum (``states.analytics_summary.columns``); ``analytics_outcomes`` the
latest measurement's verdicts. The filter is a ``WHERE`` over those columns (the received day, the
sponsor, the path or redirect kind, the owner's requests), and the queries give what the figures
read: the groups with their counts and checkpoint sums, the ROI sums per currency, the verdict counts
per level and sponsor, and per duration its n and the values at the median's and the p90's ranks
(SQLite: ``OFFSET`` on the column's index; PostgreSQL: ``percentile_disc``, one scan), so no track is
read into Python. ``summarise`` over the walked tracks is the oracle
(``tests/integration/test_analytics_sql.py``). The cache is brought up to date first
(:func:`connectors.db.analytics.refresh`), then everything is read in one read transaction.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Engine, text

from connectors.db.analytics import refresh
from connectors.db.engine import is_sqlite, read_transaction
from states.analytics_figures import Filter
from states.analytics_summary import COUNTERS, SPREADS, Money, OutcomeCount, Spread, Summary, group

_KEY = ("month", "path", "kind", "reached", "causes", "delivered_ckpt", "all_closed")


def where(flt: Filter, sqlite: bool) -> tuple[str, dict[str, Any]]:
    """The filter as a condition on ``analytics_facts`` (alias ``a``) and its parameters."""
    parts, params = ["1 = 1"], {}
    if flt.date_from is not None:
        parts.append("a.day >= :date_from")
        params["date_from"] = flt.date_from.isoformat()
    if flt.date_to is not None:
        parts.append("a.day <= :date_to")
        params["date_to"] = flt.date_to.isoformat()
    if flt.sponsor:
        parts.append("a.sponsor = :sponsor")
        params["sponsor"] = flt.sponsor
    if flt.type:
        parts.append("(a.path = :type OR a.kind = :type)")
        params["type"] = flt.type
    if flt.owner_ids is not None:
        ids = ("SELECT value FROM json_each(:owner_ids)" if sqlite else
               "SELECT CAST(value AS integer) FROM jsonb_array_elements_text(CAST(:owner_ids AS jsonb))")
        parts.append(f"a.request_id IN ({ids})")
        params["owner_ids"] = json.dumps(sorted(flt.owner_ids))
    return " AND ".join(parts), params


def _column(name: str) -> str:
    return name if name in ("plan_approval", "delivery_to_last_result") else f"t_{name}"


def _percentiles(conn: Connection, cond: str, params: dict[str, Any]) -> dict[str, Spread]:
    """PostgreSQL: per duration, n and the ranks by ``percentile_disc`` in one scan: ceil(0.5 n) ascending
    and descending are the two middle values (one when n is odd), ceil(0.9 n) the p90's nearest rank,
    computed in float8 as ``math.ceil(0.9 * n)`` is."""
    cols = [_column(name) for name in SPREADS]
    row = conn.execute(text("SELECT " + ", ".join(
        f"count(a.{c}), percentile_disc(0.5) WITHIN GROUP (ORDER BY a.{c}), "
        f"percentile_disc(0.5) WITHIN GROUP (ORDER BY a.{c} DESC), percentile_disc(0.9) WITHIN GROUP (ORDER BY a.{c})"
        for c in cols) + f" FROM analytics_facts a WHERE {cond}"), params).one()
    out = {}
    for i, name in enumerate(SPREADS):
        n, low, high, p90 = row[4 * i:4 * i + 4]
        if n:
            out[name] = Spread(int(n), float(low) if n % 2 else (float(low) + float(high)) / 2, float(p90))
    return out


def _ranked(conn: Connection, cond: str, params: dict[str, Any]) -> dict[str, Spread]:
    """SQLite: per duration, its n, then the values at the median's two middle ranks and the p90's nearest
    rank, each by ``ORDER BY … LIMIT … OFFSET`` on the column's index (no sort of the kept values)."""
    out = {}
    for name in SPREADS:
        col = _column(name)
        n = conn.execute(text(f"SELECT count(*) FROM analytics_facts a WHERE {cond} AND a.{col} IS NOT NULL"),
                         params).scalar_one()  # on the column's index
        if not n:
            continue
        pick = (f"SELECT a.{col} FROM analytics_facts a WHERE {cond} AND a.{col} IS NOT NULL ORDER BY a.{col} "
                "LIMIT :n OFFSET :k")
        middle = [float(v) for (v,) in conn.execute(text(pick), {**params, "n": 2, "k": (n + 1) // 2 - 1})]
        p90 = conn.execute(text(pick), {**params, "n": 1, "k": (9 * n + 9) // 10 - 1}).scalar_one()
        median = middle[0] if n % 2 else (middle[0] + middle[1]) / 2
        out[name] = Spread(int(n), median, float(p90))
    return out


def summary(engine: Engine, flt: Filter) -> Summary:
    """The summary of the requests ``flt`` keeps, from the (refreshed) track cache."""
    refresh(engine)
    sqlite = is_sqlite(engine)
    cond, params = where(flt, sqlite)
    key = ", ".join(f"a.{k}" for k in _KEY)
    with read_transaction(engine) as conn:
        groups = conn.execute(text(
            f"SELECT {key}, count(*), {', '.join(f'sum(a.{c})' for c in COUNTERS)} FROM analytics_facts a "
            f"WHERE {cond} GROUP BY {key}"), params).all()
        money = conn.execute(text(
            "SELECT a.roi_currency, count(*), sum(a.isolated), sum(a.not_isolated), sum(a.costs) "
            f"FROM analytics_facts a WHERE {cond} AND a.roi_currency <> '' GROUP BY a.roi_currency"), params).all()
        outcomes = conn.execute(text(  # the verdict rows carry the filter's columns: the same WHERE
            "SELECT a.framework, a.level, a.sponsor, a.outcome, count(*) FROM analytics_outcomes a "
            f"WHERE {cond} GROUP BY a.framework, a.level, a.sponsor, a.outcome"), params).all()
        spreads = _ranked(conn, cond, params) if sqlite else _percentiles(conn, cond, params)
    return Summary(
        requests=sum(int(r[len(_KEY)]) for r in groups),
        groups=tuple(group(r[:len(_KEY)], r[len(_KEY):]) for r in groups),
        money=tuple(Money(str(r[0]), int(r[1]), float(r[2]), float(r[3]), float(r[4])) for r in money),
        outcomes=tuple(OutcomeCount(str(r[0]), int(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in outcomes),
        spreads=spreads)
