"""`ldflow history` of one request in a database holding 1,000,000 audit events.

Goal (issue 2): <= 5 ms p95 for the query.

The database: 100,000 requests with 10 events each (submitted, diagnosed, plan
drafted and approved, designed, delivered, two checkpoints scheduled, survey
sent, a note), payloads shaped and sized like the real ones, interleaved in
time the way concurrent requests are (a request's events are spread far apart
in the chain), correctly hash-chained with ``connectors.db.audit.event_hash``.
It is built once with bulk inserts and cached under ``.bench/`` keyed by
``DB_VERSION`` and the schema revision; reruns reuse it.

Timed, for 1,000 random requests (warm page cache, after a warm-up):
  * ``SqlStore.history(id)`` — the whole call behind ``ldflow history``: a connection
    from make_engine's pool (a new one per process in the CLI), existence check, the
    indexed query, one ``AuditRecord`` per row (payload JSON parsed);
  * the store's query alone, on an open SQLAlchemy connection;
  * baseline: ``SELECT * FROM audit_events WHERE request_id=? ORDER BY rseq`` through
    the ``sqlite3`` module on an open connection.
The three run interleaved per request. Also: ``EXPLAIN QUERY PLAN`` of the
store's query (the index must be used), and ``audit.verify`` over the whole
chain (events/s, informative).

    python bench/history.py [--samples 1000] [--events 1000000] [--per-request 10] [--rebuild] [--no-verify]
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Run as a script, Python puts bench/ first on sys.path, where bench/transitions.py would
# shadow the `transitions` library that states/lifecycle.py imports: take bench/ out.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import sqlalchemy as sa  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench._common import (  # noqa: E402
    BENCH_DIR,
    SPONSOR,
    diagnosis,
    emit_json,
    environment,
    intake,
    summary_ms,
)
from connectors.db import audit, schema  # noqa: E402
from connectors.db.engine import make_engine  # noqa: E402
from connectors.db.store import SqlStore  # noqa: E402
from connectors.db.tables import audit_events, requests  # noqa: E402
from states.models import Diagnosis, Intake  # noqa: E402
from states.request import TrainingRequest  # noqa: E402

GOAL_P95_MS = 5.0
# Bump when the generated data changes; the schema revision is part of the cache key too.
DB_VERSION = "h3"  # h3: one chain per request (0009_audit_chains); h2: the event hash embeds the payload
ACTOR = "bench@example.org"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
RID = "__RID__"  # placeholder for the request id inside payload templates


def _payload_templates() -> list[tuple[str, str | None, str | None, str | None, int, str]]:
    """(type, trigger, from, to, version, canonical payload with RID) for the ten events of a request."""
    at = T0
    req = TrainingRequest.submit(Intake.model_validate(intake(0)), at)
    req.id = 0
    req.diagnose(Diagnosis.model_validate(diagnosis()), at)
    submitted, diagnosed = (audit.canonical_json(e.payload) for e in req.pending_events())
    submitted = submitted.replace("#0", f"#{RID}")
    cp = f"{RID}:m1"
    plan = {"plan": {"framework": "kirkpatrick", "items": [
        {"id": "m1", "level": 3, "metric": "Discovery questions asked per call", "unit": "questions",
         "instrument": "observation", "respondent": "manager", "baseline": {"value": 0.5, "source": "ride-alongs"},
         "target": {"value": 3}, "checkpoints": ["P30D", "P90D"], "owner": {"name": "Sam Sponsor",
                                                                           "email": SPONSOR}}],
        "costs": {"program_cost": 24000, "currency": "EUR"}}}
    brief = {"brief": {"format": "practice-based workshop with call shadowing", "duration": "2 x 3h",
                       "activities": ["role-play discovery calls", "peer feedback on recorded calls"],
                       "job_aids": ["discovery question card"]}}
    delivery = {"delivery": {"start_date": "2026-03-02", "end_date": "2026-03-06", "participants": 38,
                             "facilitator": "External partner"}}
    c = audit.canonical_json
    return [
        ("submitted", None, None, None, 1, submitted),
        ("diagnosed", "diagnose", "received", "diagnosed", 2, diagnosed),
        ("plan_drafted", None, None, None, 3, c(plan)),
        ("plan_approved", None, None, None, 4, c({"approver": SPONSOR, "comment": "Agreed."})),
        ("designed", "design", "diagnosed", "designed", 5, c(brief)),
        ("delivered", "deliver", "designed", "delivered", 6, c(delivery)),
        ("checkpoint_scheduled", None, None, None, 6,
         c({"checkpoint": f"{cp}:P30D", "item": "m1", "offset": "P30D", "due_at": "2026-04-05T09:00:00+00:00"})),
        ("checkpoint_scheduled", None, None, None, 6,
         c({"checkpoint": f"{cp}:P90D", "item": "m1", "offset": "P90D", "due_at": "2026-06-04T09:00:00+00:00"})),
        ("survey_sent", None, None, None, 7, c({"checkpoint": f"{cp}:P30D", "to": [SPONSOR]})),
        ("note_added", None, None, None, 8, c({"text": "Sponsor asked to add the EMEA night shift next quarter."})),
    ]


def db_path(n_events: int, per_request: int) -> Path:
    return BENCH_DIR / f"history-{DB_VERSION}-r{schema.HEAD}-{n_events}x{per_request}.db"


def build(path: Path, n_events: int, per_request: int, console: Console) -> float:
    """Build the database at ``path`` (via a temporary file); return the seconds it took."""
    started = time.perf_counter()
    n_requests = n_events // per_request
    templates = _payload_templates()
    if per_request > len(templates):
        raise SystemExit(f"--per-request is at most {len(templates)}")
    BENCH_DIR.mkdir(exist_ok=True)
    tmp = path.with_suffix(".building")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)

    engine = make_engine(f"sqlite:///{tmp}")
    schema.ensure_schema(engine)
    engine.dispose()  # no pooled WAL connection may stay open: the bulk load below switches the journal mode
    # The request rows through Core (its DateTime handling); one real document for all.
    doc_req = TrainingRequest.submit(Intake.model_validate(intake(0)), T0)
    doc_req.diagnose(Diagnosis.model_validate(diagnosis()), T0)
    document = doc_req.model_dump_json(exclude={"id", "version"})

    # A timeline: request i starts at minute i; its k-th event comes 0-7 days after the previous one.
    rng = random.Random(20261124)
    timeline: list[tuple[int, int, int]] = []  # (minute, request id, k)
    for rid in range(1, n_requests + 1):
        t = rid
        for k in range(per_request):
            timeline.append((t, rid, k))
            t += rng.randint(1, 7 * 24 * 60)
    timeline.sort()
    console.log(f"timeline of {len(timeline):,} events sorted")

    heads: dict[int, int] = {}
    last_at: dict[int, datetime] = {}
    raw = sqlite3.connect(tmp, isolation_level=None)
    raw.execute("PRAGMA journal_mode=DELETE")  # bulk load: no WAL, no fsync; back to WAL at the end
    raw.execute("PRAGMA synchronous=OFF")
    raw.execute("PRAGMA cache_size=-262144")  # 256 MiB
    raw.execute("BEGIN")
    sql = ("INSERT INTO audit_events (seq, request_id, rseq, type, \"trigger\", from_state, to_state, version, actor,"
           " at, doc, payload, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
    chains: dict[int, tuple[int, str]] = {}  # request id → (rseq, hash) of its newest event: one chain each
    last_doc = audit.doc_hash("delivered", 0, document)  # the request rows below: state delivered, this document
    batch: list[tuple[Any, ...]] = []
    event_hash = audit.event_hash
    for seq, (minute, rid, k) in enumerate(timeline, start=1):
        type_, trigger, from_state, to_state, version, payload = templates[k]
        at_dt = T0 + timedelta(minutes=minute)
        at = at_dt.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        rseq, prev_hash = chains.get(rid, (0, audit.GENESIS))
        row = {"request_id": rid, "rseq": rseq + 1, "type": type_, "trigger": trigger, "from_state": from_state,
               "to_state": to_state, "version": version, "actor": ACTOR, "at": at,
               "doc": last_doc if k == per_request - 1 else "", "payload": payload.replace(RID, str(rid))}
        prev = event_hash(prev_hash, row)
        batch.append((seq, rid, rseq + 1, type_, trigger, from_state, to_state, version, ACTOR, at, row["doc"],
                      row["payload"], prev_hash, prev))
        chains[rid] = (rseq + 1, prev)
        heads[rid] = rseq + 1
        last_at[rid] = at_dt
        if len(batch) == 50_000:
            raw.executemany(sql, batch)
            batch.clear()
            if seq % 200_000 == 0:
                console.log(f"{seq:,} events")
    if batch:
        raw.executemany(sql, batch)
    raw.execute("COMMIT")
    raw.close()

    with engine.begin() as conn:
        rows = [{"id": rid, "title": f"Discovery calls for the inside sales team #{rid}", "state": "delivered",
                 "version": templates[per_request - 1][4], "requester_email": "rita.requester@example.org",
                 "sponsor_email": SPONSOR, "created_at": T0 + timedelta(minutes=rid), "updated_at": last_at[rid],
                 "head_seq": heads[rid], "head_hash": chains[rid][1], "document": document}
                for rid in range(1, n_requests + 1)]
        for i in range(0, len(rows), 20_000):
            conn.execute(sa.insert(requests), rows[i:i + 20_000])
    engine.dispose()
    raw = sqlite3.connect(tmp, isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.close()
    tmp.replace(path)
    return time.perf_counter() - started



def open_or_build(n_events: int, per_request: int, rebuild: bool, console: Console) -> tuple[Path, float | None]:
    path = db_path(n_events, per_request)
    if path.exists() and not rebuild:
        with sqlite3.connect(path) as check:  # a cached file must be whole: the build renames it last
            found = check.execute("SELECT count(*) FROM audit_events").fetchone()[0]
        check.close()
        if found == (n_events // per_request) * per_request:
            return path, None
        console.log(f"cached {path.name} holds {found:,} events: rebuilding")
    for old in BENCH_DIR.glob("history-*.db*"):  # older versions of the cache
        old.unlink(missing_ok=True)
    with console.status(f"building {path.name} ({n_events:,} events) ..."):
        seconds = build(path, n_events, per_request, console)
    return path, seconds


def query_plan(conn: sa.Connection, request_id: int) -> list[str]:
    stmt = sa.select(audit_events).where(audit_events.c.request_id == request_id).order_by(audit_events.c.rseq)
    compiled = stmt.compile(dialect=conn.dialect)
    sql = str(compiled)
    params = tuple(compiled.params[k] for k in compiled.positiontup or ())
    return [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=1000, help="random requests to time (default 1000)")
    parser.add_argument("--events", type=int, default=1_000_000, help="audit events in the database")
    parser.add_argument("--per-request", type=int, default=10, help="events per request (at most 10)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached database")
    parser.add_argument("--no-verify", action="store_true", help="skip timing audit.verify over the chain")
    args = parser.parse_args(argv)
    if args.samples < 1 or args.events < args.per_request or not 1 <= args.per_request <= 10:
        parser.error("need --samples >= 1, 1 <= --per-request <= 10 and --events >= --per-request")

    console = Console(width=max(Console().width, 110))
    load_before = os.getloadavg()[0]
    path, build_s = open_or_build(args.events, args.per_request, args.rebuild, console)
    n_requests = args.events // args.per_request
    engine = make_engine(f"sqlite:///{path}")
    store = SqlStore(engine)

    rng = random.Random(7)
    sample = rng.sample(range(1, n_requests + 1), min(args.samples, n_requests))
    warmup = rng.sample(range(1, n_requests + 1), min(100, n_requests))

    raw = sqlite3.connect(path)
    raw_sql = "SELECT * FROM audit_events WHERE request_id = ? ORDER BY rseq"
    timings: dict[str, list[float]] = {"store": [], "query": [], "raw": []}
    with engine.connect() as conn:
        plan = query_plan(conn, sample[0])

        def run_store(rid: int) -> int:
            return len(store.history(rid))

        def run_query(rid: int) -> int:  # the statement SqlStore.history builds, on an open connection
            return len(conn.execute(sa.select(audit_events).where(audit_events.c.request_id == rid)
                                    .order_by(audit_events.c.rseq)).all())

        def run_raw(rid: int) -> int:
            return len(raw.execute(raw_sql, (rid,)).fetchall())

        runs = {"store": run_store, "query": run_query, "raw": run_raw}
        for rid in warmup:
            for fn in runs.values():
                fn(rid)
        order = list(runs)
        perf = time.perf_counter
        for i, rid in enumerate(sample):
            for name in order[i % 3:] + order[:i % 3]:  # rotate which variant goes first
                t0 = perf()
                found = runs[name](rid)
                timings[name].append(perf() - t0)
                if found != args.per_request:
                    raise RuntimeError(f"{name}: request {rid} has {found} events, expected {args.per_request}")
        conn.rollback()
    raw.close()

    verify: dict[str, Any] | None = None
    if not args.no_verify:
        with console.status(f"audit.verify over {args.events:,} events ..."):
            t0 = time.perf_counter()
            report = audit.verify(engine)
            seconds = time.perf_counter() - t0
        if not report.ok:
            raise RuntimeError(f"the benchmark database's chain is broken: {report.reason}")
        verify = {"events": report.events_checked, "requests": report.requests_checked,
                  "seconds": round(seconds, 2), "events_per_s": round(report.events_checked / seconds)}
    engine.dispose()

    stats = {name: summary_ms(ts) for name, ts in timings.items()}
    index_used = any("uq_audit_request_rseq" in line or "sqlite_autoindex_audit_events" in line for line in plan)
    table = Table(title=f"History of one request: {args.events:,} audit events, {n_requests:,} requests, "
                        f"{len(sample):,} random requests (ms)")
    for col in ("what", "p50", "p95", "p99", "mean", "max", f"p95 ≤ {GOAL_P95_MS:g} ms?", "p50 vs raw"):
        table.add_column(col, justify="right")
    labels = {"store": "SqlStore.history (whole call)", "query": "its query alone (SQLAlchemy, open conn.)",
              "raw": "raw sqlite3 SELECT (baseline)"}
    for name, s in stats.items():
        ok = s["p95"] <= GOAL_P95_MS
        table.add_row(labels[name], *(f"{s[k]:.3f}" for k in ("p50", "p95", "p99", "mean", "max")),
                      "[green]yes[/green]" if ok else "[red]no[/red]", f"{s['p50'] / stats['raw']['p50']:.1f}×")
    console.print(table)
    load_after = os.getloadavg()[0]
    if max(load_before, load_after) > 1.0:
        console.print(f"[yellow]The machine was busy (load average {load_before:.1f} before, {load_after:.1f} after, "
                      f"{os.cpu_count()} CPUs): figures are noisy; run again on a quiet machine.[/yellow]")
    console.print(f"EXPLAIN QUERY PLAN (store's query): {' | '.join(plan)}"
                  + ("" if index_used else "  [red]— the index uq_audit_request_rseq is NOT used[/red]"))
    if build_s is not None:
        console.print(f"built {path.name} in {build_s:.0f} s (cached for the next run)")
    else:
        console.print(f"reused the cached {path.name} (--rebuild to build it again)")
    if verify:
        console.print(f"audit.verify: {verify['events']:,} events and {verify['requests']:,} requests in "
                      f"{verify['seconds']:.1f} s = {verify['events_per_s']:,} events/s")
    emit_json("history", {
        "env": environment(), "load_average": [round(load_before, 2), round(load_after, 2)],
        "events": args.events, "requests": n_requests, "samples": len(sample),
        "goal_p95_ms": GOAL_P95_MS, "goal_met": stats["store"]["p95"] <= GOAL_P95_MS and index_used,
        "ms": {k: {m: round(v, 4) for m, v in s.items()} for k, s in stats.items()},
        "ratio_p50_store_vs_raw": round(stats["store"]["p50"] / stats["raw"]["p50"], 2),
        "ratio_p50_query_vs_raw": round(stats["query"]["p50"] / stats["raw"]["p50"], 2),
        "query_plan": plan, "index_used": index_used, "build_seconds": None if build_s is None else round(build_s, 1),
        "verify": verify,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
