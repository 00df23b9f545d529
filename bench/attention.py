"""The SLA clocks at scale: ``ldflow attention``, the board (SLA badges; the attention filter) and the
analytics SLA section over 100,000 requests and 1,000,000 audit events, on SQLite and PostgreSQL.

Goals (issue 11, the slascale brief): ``ldflow attention`` <= 1 s, the board p95 <= 200 ms with its
badges, the analytics SLA section small enough that ``ldflow analytics`` stays <= 1 s.

The data: ``bench/analytics.py``'s four stories (their clocks all stopped by the end) and a fifth, 10%:
diagnosed with a plan waiting for the sponsor and notes since (its sponsor-approval clock running and
breached, its design clock paused), 10 events each; the SQLite file and the PostgreSQL database
``ldflow_bench_attention`` are rebuilt by each run. The clock summaries are filled by migration
0010's backfill (timed: what the migration costs at this size). Documents are placeholders: nothing
measured here reads one (no checkpoint needs review in this data).

Timed, per backend, against one ``SELECT state, count(*) FROM requests GROUP BY state`` in the same run:
  * attention, first read under the policy (every summary walked, the outcomes written to the store);
  * attention as a new process (``flows.sla``'s in-process cache emptied; the store's outcomes read
    back, the running breached clocks walked again) — what ``ldflow attention`` costs; and warm;
  * the board's first page (50 cards, their SLA badges from their summaries) p50/p95, and with the
    attention filter (the attention list, warm, then the board query);
  * the analytics SLA section over every request, as a new process and after 100 requests got an event;
  * ``ldflow analytics`` as a whole as a new process (``flows.analytics.figures``), without and with its
    SLA section: first its first run (every track computed and kept) and one run right after it, on
    tables just rewritten; then, on PostgreSQL, ``VACUUM ANALYZE`` (what autovacuum does within a minute
    of the backfill and those first writes: without the visibility map every index-only scan reads the
    heap) before everything else is timed.

    python bench/attention.py [--requests 100000] [--runs 5] [--pages 100] [--no-postgres|--no-sqlite]
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import sqlalchemy as sa  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench import analytics as data_set  # noqa: E402
from bench._common import BENCH_DIR, emit_json, environment, percentile, timed  # noqa: E402
from connectors.db.engine import make_engine  # noqa: E402
from connectors.db.store import SqlStore  # noqa: E402

PG_DB = "ldflow_bench_attention"
BASELINE = "SELECT state, count(*) FROM requests GROUP BY state"
WAITING = (0.10, [("submitted", None, "INTAKE"), ("note_added", None, data_set.C({"text": "asked"})),
                  ("diagnosed", "diagnosed", data_set._diag(data_set._CHECKS_GAP)),
                  ("plan_drafted", None, data_set._PLAN)]
           + [("note_added", None, data_set.C({"text": f"chased {k}"})) for k in range(6)])


def generate(n: int) -> tuple[list[Any], list[Any]]:
    stories = data_set.STORIES
    data_set.STORIES = [(w * 0.9, s) for w, s in stories] + [WAITING]
    try:
        return data_set.generate(n)
    finally:
        data_set.STORIES = stories


_COLUMNS = ('seq, request_id, rseq, type, "trigger", from_state, to_state, version, actor, at, doc, payload, '
            'prev_hash, hash')


_COUNTS = "INSERT INTO request_counts (state, n) SELECT state, count(*) FROM requests GROUP BY state"


def _rows(events: list[Any]) -> list[tuple[Any, ...]]:
    """``bench/analytics.py``'s audit rows (they carry their ``rseq`` and an empty ``doc`` already)."""
    return events


def build_sqlite(path: Path, data: tuple[list[Any], list[Any]]) -> None:
    import sqlite3

    from connectors.db import schema
    from connectors.db.tables import requests

    engine = make_engine(f"sqlite:///{path}")
    schema.ensure_schema(engine)
    with engine.begin() as conn:
        for i in range(0, len(data[1]), 20_000):
            conn.execute(sa.insert(requests), data[1][i:i + 20_000])
        conn.execute(sa.text(_COUNTS))
    engine.dispose()
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA synchronous=OFF")
    raw.execute("BEGIN")
    raw.executemany(f"INSERT INTO audit_events ({_COLUMNS}) VALUES ({','.join('?' * 14)})", _rows(data[0]))
    raw.execute("COMMIT")
    raw.execute("ANALYZE")
    raw.close()


def build_postgres(admin_url: str, url: str, data: tuple[list[Any], list[Any]]) -> None:
    import psycopg

    from connectors.db import schema
    from connectors.db.tables import requests

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {PG_DB}")
        admin.execute(f"CREATE DATABASE {PG_DB}")
    engine = make_engine(url)
    schema.ensure_schema(engine)
    with engine.begin() as conn:
        for i in range(0, len(data[1]), 20_000):
            conn.execute(sa.insert(requests), data[1][i:i + 20_000])
        conn.execute(sa.text(_COUNTS))
    engine.dispose()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        with conn.cursor() as cur, cur.copy(f"COPY audit_events ({_COLUMNS}) FROM STDIN") as cp:
            for row in _rows(data[0]):
                cp.write_row(row)
        conn.execute("ANALYZE")


def backfill(engine: sa.Engine) -> float:
    spec = importlib.util.spec_from_file_location(
        "m0010", _HERE.parent / "connectors/db/migrations/versions/0011_sla_clocks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    started = time.perf_counter()
    with engine.begin() as conn:
        module.backfill(conn)
    return time.perf_counter() - started


def _touch(engine: sa.Engine, n: int, total: int) -> None:
    """``n`` requests get a newer event (a note), its summary line appended, as the store writes them."""
    line = '["note_added","2027-06-01T00:00:00.000000Z",""]\n'
    with engine.begin() as conn:
        head = conn.execute(sa.text("SELECT max(seq) FROM audit_events")).scalar_one()
        for i in range(n):
            rid = 1 + i * 997 % total  # its 11th event (head_seq: the newest seq, as bench/analytics.py keeps it)
            conn.execute(sa.text(f"INSERT INTO audit_events ({_COLUMNS}) VALUES (:s, :r, :q, 'note_added', NULL, "
                                 "NULL, NULL, 11, 'b', '2027-06-01T00:00:00.000000Z', '', '{\"text\":\"x\"}', :h, :h)"),
                         {"s": head + 1 + i, "r": rid, "q": 11, "h": "0" * 64})
            conn.execute(sa.text("UPDATE requests SET head_seq = :s, sla_entries = sla_entries || :line "
                                 "WHERE id = :r"), {"s": head + 1 + i, "r": rid, "line": line})


def run_backend(name: str, url: str, runs: int, pages: int, total: int, console: Console) -> dict[str, Any]:
    from connectors.db.unit_of_work import SqlUnitOfWork
    from connectors.testing import InMemorySender, InMemoryUsers
    from flows import analytics, attention, board, sla
    from flows.bootstrap import compose
    from flows.clock import FixedClock
    from flows.settings import Settings

    engine = make_engine(url)
    store = SqlStore(engine)
    result: dict[str, Any] = {"backfill_s": backfill(engine)}
    clock = FixedClock(data_set.T0 + timedelta(days=800))
    app = compose(Settings(home=BENCH_DIR / "attention-home"), store=store, uow=SqlUnitOfWork(engine, store),
                  clock=clock, sender=InMemorySender(), sources=lambda: [], users=InMemoryUsers())
    policy = sla.load_policy(app.settings)

    def baseline() -> None:
        with engine.connect() as conn:
            conn.execute(sa.text(BASELINE)).all()

    def new_process() -> list[Any]:
        sla._CACHES.clear()
        return attention.attention_list(app, clock.now(), policy)

    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM sla_outcomes"))
    sla._CACHES.clear()
    result["attention_first_s"] = timed(lambda: attention.attention_list(app, clock.now(), policy))
    clocks = analytics.SlaClocks(policy, clock.now())

    def whole(with_clocks: bool) -> dict[str, Any]:  # ldflow analytics as a new process, with its SLA section
        sla._CACHES.clear()
        analytics._CACHES.clear()
        return analytics.figures(store, None, clocks if with_clocks else None)

    result["analytics_first_s"] = timed(lambda: whole(True))  # every track computed and kept
    result["analytics_sla_unvacuumed_s"] = timed(lambda: whole(True))
    if name == "postgres":  # the backfill rewrote every request row and the first reads wrote 200,000 rows:
        # what autovacuum does within a minute of that (the visibility map, so index-only scans stay so)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    baseline()
    base, cold, warm = [], [], []
    for _ in range(runs):  # alternate, so each sees the same machine load
        base.append(timed(baseline))
        cold.append(timed(new_process))
        warm.append(timed(lambda: attention.attention_list(app, clock.now(), policy)))
    result.update(baseline_s=min(base), attention_s=min(cold), attention_median_s=sorted(cold)[runs // 2],
                  attention_warm_s=min(warm), items=len(new_process()))

    def pages_of(flt: board.BoardFilter) -> tuple[float, float, int]:
        times, badges = [], 0
        for _ in range(pages):
            started = time.perf_counter()
            shown = board.board(app, flt)
            times.append((time.perf_counter() - started) * 1000)
            badges = sum(1 for c in shown.columns for card in c.cards if card.sla)
        return percentile(times, 50), percentile(times, 95), badges

    p50, p95, badges = pages_of(board.BoardFilter())
    result.update(board_p50_ms=p50, board_p95_ms=p95, board_badges=badges)
    p50, p95, badges = pages_of(board.BoardFilter(attention=True))
    result.update(board_attention_p50_ms=p50, board_attention_p95_ms=p95, board_attention_badges=badges)

    def section() -> dict[str, Any]:
        sla._CACHES.clear()
        analytics._CACHES.clear()
        return analytics._sla(store, analytics._cached(store), analytics.Filter(), clocks)

    section()
    result["sla_section_s"] = min(timed(section) for _ in range(runs))
    figures, with_sla = [], []
    for _ in range(runs):
        figures.append(timed(lambda: whole(False)))
        with_sla.append(timed(lambda: whole(True)))
    result.update(analytics_s=min(figures), analytics_sla_s=min(with_sla),
                  analytics_sla_median_s=sorted(with_sla)[runs // 2])
    _touch(engine, 100, total)  # 100 requests get a newer event: their summaries walked again
    result["sla_section_after_writes_s"] = timed(section)
    result["sla_requests_breached"] = section()["requests_breached"]
    result["load"] = os.getloadavg()
    engine.dispose()
    console.log(f"{name}: {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    console = Console(stderr=True)
    BENCH_DIR.mkdir(exist_ok=True)
    data = generate(args.requests)
    # The generated rows (a million tuples) stay in memory for the second backend's build: out of the
    # collector's sight, or every timed call would pay for rescanning them (no ldflow process holds them)
    gc.collect()
    gc.freeze()
    console.log(f"generated {len(data[0]):,} events for {len(data[1]):,} requests; load {os.getloadavg()}")
    results = {}
    if not args.no_sqlite:
        path = BENCH_DIR / f"attention-{args.requests}.db"
        path.unlink(missing_ok=True)
        console.log(f"SQLite built in {timed(lambda: build_sqlite(path, data)):.1f} s")
        results["sqlite"] = run_backend("sqlite", f"sqlite:///{path}", args.runs, args.pages, args.requests, console)
    if not args.no_postgres:
        pg_admin = os.environ.get("LDFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        pg_url = pg_admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{PG_DB}"
        console.log(f"PostgreSQL built in {timed(lambda: build_postgres(pg_admin, pg_url, data)):.1f} s")
        results["postgres"] = run_backend("postgres", pg_url, args.runs, args.pages, args.requests, console)
    table = Table(title=f"SLA clocks over {args.requests:,} requests, {args.requests * 10:,} events")
    for col in ("backend", "baseline", "attention (new process)", "ratio", "warm", "first read", "items",
                "board p95", "board+attention p95", "SLA section", "after 100 writes", "analytics (no SLA)",
                "analytics with SLA", "backfill"):
        table.add_column(col)
    for name, r in results.items():
        table.add_row(name, f"{r['baseline_s'] * 1000:.0f} ms", f"{r['attention_s'] * 1000:.0f} ms",
                      f"{r['attention_s'] / r['baseline_s']:.1f}", f"{r['attention_warm_s'] * 1000:.0f} ms",
                      f"{r['attention_first_s']:.1f} s", f"{r['items']:,}", f"{r['board_p95_ms']:.1f} ms",
                      f"{r['board_attention_p95_ms']:.1f} ms", f"{r['sla_section_s'] * 1000:.0f} ms",
                      f"{r['sla_section_after_writes_s'] * 1000:.0f} ms", f"{r['analytics_s'] * 1000:.0f} ms",
                      f"{r['analytics_sla_s'] * 1000:.0f} ms", f"{r['backfill_s']:.1f} s")
    Console().print(table)
    emit_json("attention", {"env": environment(), **results})


if __name__ == "__main__":
    main()
