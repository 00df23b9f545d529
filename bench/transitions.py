"""Durable single transitions per second on SQLite, against a raw baseline.

Goal (issue 2): ldflow transitions/s >= 0.6 x raw commits/s, both measured in
this run, for ``synchronous=FULL`` (the default) and ``NORMAL``.

Raw baseline: SQLAlchemy Core on an engine from ``connectors.db.engine.make_engine``
(pooled connections — SQLAlchemy's default QueuePool for a SQLite file —, the same
pragmas: WAL, the same ``synchronous``, busy timeout; ``BEGIN IMMEDIATE`` through
``write_transaction``), one transaction per pair of statements:
UPDATE of a requests-like row (state, version, updated_at and a JSON document
the size of a diagnosed request's) + INSERT of an events-like row (payload the
size of a ``diagnosed`` event's), in a database of its own.

Measured (ldflow): ``Service.diagnose(id, <diagnosis dict>, actor)`` over
``SqlStore`` — the full path of one CLI command: input validation, then one
write transaction (``SqlStore.update``: ``BEGIN IMMEDIATE``) that loads the
request, runs the aggregate (lifecycle, guard, recommendations, notification)
and writes the chain-head read, the hash-chained audit row, the versioned
UPDATE and the outbox row.
The requests are submitted beforehand, outside the timing; each request is
diagnosed once (received -> diagnosed), one commit per transition.

Raw and ldflow alternate one operation at a time (who goes first alternates
too), so that noise from other processes on this shared machine hits both
alike. Throughput and the goal's ratio come from the total times; the ratio of
the median per-operation times is printed beside it as a check that is robust
against stray outliers.

``--nullpool`` is a what-if (informative, not the goal): both engines get the same
pragmas but open and close a SQLite connection per transaction, as make_engine did
before it pooled.

    python bench/transitions.py [--n 2000] [--sync FULL NORMAL] [--profile] [--nullpool]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Run as a script, Python puts bench/ first on sys.path, where this very file would shadow
# the `transitions` library that states/lifecycle.py imports: take bench/ out, put the root in.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import sqlalchemy as sa  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench._common import diagnosis, emit_json, environment, intake, scratch_dir, summary_ms  # noqa: E402
from connectors.db import audit, schema  # noqa: E402
from connectors.db import engine as engine_module  # noqa: E402
from connectors.db.engine import make_engine, write_transaction  # noqa: E402
from connectors.db.store import SqlStore  # noqa: E402
from flows.clock import FixedClock  # noqa: E402
from flows.service import Service  # noqa: E402
from states.models import Diagnosis  # noqa: E402

GOAL = 0.6
ACTOR = "bench@example.org"

# --- the raw baseline ---------------------------------------------------------------------------

raw_md = sa.MetaData()
raw_requests = sa.Table(
    "raw_requests", raw_md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Column("document", sa.Text, nullable=False),
)
raw_events = sa.Table(
    "raw_events", raw_md,
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("request_id", sa.Integer, nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Index("ix_raw_events_request_seq", "request_id", "seq"),
)


class RawDbapi:
    """The goal's baseline: the same UPDATE + INSERT on the bare ``sqlite3`` module (DB-API), one
    connection held open, ``BEGIN IMMEDIATE`` … ``COMMIT`` per pair, the same pragmas (WAL, synchronous,
    busy timeout), in a database of its own."""

    def __init__(self, path: Path, synchronous: str, n: int, document: str, payload: str) -> None:
        import sqlite3

        self.conn = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=WAL", f"synchronous={synchronous}", "busy_timeout=30000"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.conn.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, state TEXT, version INTEGER, updated_at TEXT, "
                          "document TEXT)")
        self.conn.execute("CREATE TABLE e (seq INTEGER PRIMARY KEY, request_id INTEGER, type TEXT, "
                          "version INTEGER, at TEXT, payload TEXT)")
        self.conn.execute("CREATE INDEX ix_e ON e (request_id, seq)")
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT INTO r VALUES (?, 'received', 1, '2026-11-01T09:00:00.000000Z', ?)",
                              [(i, document) for i in range(1, n + 1)])
        self.conn.execute("COMMIT")
        self.document, self.payload = document, payload

    def transition(self, request_id: int, at: str) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        cur = c.execute("UPDATE r SET state = 'diagnosed', version = 2, updated_at = ?, document = ? "
                        "WHERE id = ? AND version = 1", (at, self.document, request_id))
        if cur.rowcount != 1:
            raise RuntimeError(f"raw DB-API baseline: request {request_id} was not updated")
        c.execute("INSERT INTO e (request_id, type, version, at, payload) VALUES (?, 'diagnosed', 2, ?, ?)",
                  (request_id, at, self.payload))
        c.execute("COMMIT")


class RawBaseline:
    """A requests-like UPDATE + an events-like INSERT, one write transaction per pair."""

    def __init__(self, engine: sa.Engine, n: int, document: str, payload: str) -> None:
        self.engine, self.document, self.payload = engine, document, payload
        raw_md.create_all(engine)
        with write_transaction(engine) as conn:
            conn.execute(sa.insert(raw_requests), [
                {"id": i, "state": "received", "version": 1, "updated_at": "2026-11-01T09:00:00.000000Z",
                 "document": document} for i in range(1, n + 1)])

    def transition(self, request_id: int, at: str) -> None:
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                sa.update(raw_requests).where(raw_requests.c.id == request_id, raw_requests.c.version == 1)
                .values(state="diagnosed", version=2, updated_at=at, document=self.document))
            if result.rowcount != 1:
                raise RuntimeError(f"raw baseline: request {request_id} was not updated")
            conn.execute(sa.insert(raw_events).values(request_id=request_id, type="diagnosed", version=2,
                                                   at=at, payload=self.payload))

    def transition_on(self, conn: Any, request_id: int, at: str) -> None:
        """The same pair on one connection held open (informative: no pool checkout/return per commit)."""
        with conn.begin():
            result = conn.execute(
                sa.update(raw_requests).where(raw_requests.c.id == request_id, raw_requests.c.version == 2)
                .values(state="designed", version=3, updated_at=at, document=self.document))
            if result.rowcount != 1:
                raise RuntimeError(f"raw baseline (held connection): request {request_id} was not updated")
            conn.execute(sa.insert(raw_events).values(request_id=request_id, type="designed", version=3,
                                                   at=at, payload=self.payload))


def bench_engine(url: str, synchronous: str, nullpool: bool) -> sa.Engine:
    """``make_engine`` (pooled) — or, for ``--nullpool`` (a what-if, informative), the same pragmas and
    ``BEGIN IMMEDIATE`` on an engine that opens and closes a SQLite connection for every transaction
    (``NullPool``, what make_engine did before it pooled; closing the last connection also checkpoints
    and deletes the WAL)."""
    if not nullpool:
        return make_engine(url, synchronous=synchronous)
    engine = sa.create_engine(url, connect_args={"timeout": 30}, poolclass=sa.pool.NullPool)
    engine_module._configure_sqlite(engine, synchronous, 30_000)
    return engine


# --- one synchronous mode ------------------------------------------------------------------------

@dataclass
class ModeResult:
    synchronous: str
    n: int
    raw_times: list[float] = field(default_factory=list)
    ldflow_times: list[float] = field(default_factory=list)
    raw_cpu_s: float = 0.0
    ldflow_cpu_s: float = 0.0
    raw_held_s: float = 0.0
    dbapi_times: list[float] = field(default_factory=list)
    checkpoints: int = 0
    pool: str = ""  # the pool class the engines really used
    profile: str = ""

    @property
    def raw_s(self) -> float:
        return sum(self.raw_times)

    @property
    def ldflow_s(self) -> float:
        return sum(self.ldflow_times)

    @property
    def median_ratio(self) -> float:
        return statistics.median(self.raw_times) / statistics.median(self.ldflow_times)

    @property
    def raw_per_s(self) -> float:
        return self.n / self.raw_s

    @property
    def ldflow_per_s(self) -> float:
        return self.n / self.ldflow_s

    @property
    def raw_held_per_s(self) -> float:
        return self.n / self.raw_held_s

    @property
    def dbapi_per_s(self) -> float:
        return self.n / sum(self.dbapi_times)

    @property
    def ratio(self) -> float:
        """The goal (issue 13): ldflow against the bare sqlite3 UPDATE+INSERT commit."""
        return self.ldflow_per_s / self.dbapi_per_s

    @property
    def core_ratio(self) -> float:
        """Informative (issue 2's goal): ldflow against the same pair on SQLAlchemy Core."""
        return self.ldflow_per_s / self.raw_per_s

    @property
    def dbapi_median_ratio(self) -> float:
        return statistics.median(self.dbapi_times) / statistics.median(self.ldflow_times)

    def as_dict(self) -> dict[str, Any]:
        return {"synchronous": self.synchronous, "n": self.n,
                "dbapi_commits_per_s": round(self.dbapi_per_s, 1),
                "core_ratio": round(self.core_ratio, 3), "checkpoints": self.checkpoints,
                "raw_commits_per_s": round(self.raw_per_s, 1),
                "ldflow_transitions_per_s": round(self.ldflow_per_s, 1),
                "ratio": round(self.ratio, 3),
                "median_ratio": round(self.median_ratio, 3),
                "raw_us": {"mean": round(self.raw_s / self.n * 1e6, 1),
                           **{k: round(v * 1000, 1) for k, v in summary_ms(self.raw_times).items()}},
                "ldflow_us": {"mean": round(self.ldflow_s / self.n * 1e6, 1),
                              **{k: round(v * 1000, 1) for k, v in summary_ms(self.ldflow_times).items()}},
                "raw_cpu_us": round(self.raw_cpu_s / self.n * 1e6, 1),
                "ldflow_cpu_us": round(self.ldflow_cpu_s / self.n * 1e6, 1),
                "raw_held_connection_commits_per_s": round(self.raw_held_per_s, 1),
                "goal_met": self.ratio >= GOAL}


def run_mode(workdir: Path, synchronous: str, n: int, profile: bool, nullpool: bool = False,
             checkpoint_every: int = 500) -> ModeResult:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    clock = FixedClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    ldflow_engine = bench_engine(f"sqlite:///{workdir / f'ldflow-{synchronous}.db'}", synchronous, nullpool)
    schema.ensure_schema(ldflow_engine)
    key = Ed25519PrivateKey.generate()
    store = SqlStore(ldflow_engine, signing_key=key)  # heads sealed with the key's HMAC, checkpoints signed
    service = Service(store, clock)

    # Setup, not timed: N received requests.
    ids = [service.submit(intake(i), ACTOR).id for i in range(n)]
    assert all(i is not None for i in ids)
    data = diagnosis()

    # The baseline writes rows the size of ours: document and event payload of a diagnosed request.
    sample = store.get(ids[0])
    sample.diagnose(Diagnosis.model_validate(data), clock.now())
    document = sample.model_dump_json(exclude={"id", "version"})
    payload = audit.canonical_json(sample.pending_events()[-1].payload)

    raw_engine = bench_engine(f"sqlite:///{workdir / f'raw-{synchronous}.db'}", synchronous, nullpool)
    raw = RawBaseline(raw_engine, n, document, payload)
    dbapi = RawDbapi(workdir / f"dbapi-{synchronous}.db", synchronous, n, document, payload)

    result = ModeResult(synchronous, n, pool=type(ldflow_engine.pool).__name__)
    profiler = cProfile.Profile() if profile else None
    perf, cpu = time.perf_counter, time.process_time
    at = clock.now().isoformat()
    orders = ((2, 0, 1), (1, 2, 0), (0, 1, 2))
    for i in range(n):
        for which in orders[i % 3]:
            if which == 2:
                t0 = perf()
                dbapi.transition(i + 1, at)
                result.dbapi_times.append(perf() - t0)
            elif which == 0:
                c0, t0 = cpu(), perf()
                raw.transition(i + 1, at)
                result.raw_times.append(perf() - t0)
                result.raw_cpu_s += cpu() - c0
            else:
                if profiler:
                    profiler.enable()
                c0, t0 = cpu(), perf()
                service.diagnose(ids[i], data, ACTOR)  # type: ignore[arg-type]
                if checkpoint_every and (i + 1) % checkpoint_every == 0:  # a pipeline pass's checkpoint
                    result.checkpoints += store.checkpoint(clock.now()) is not None
                result.ldflow_times.append(perf() - t0)
                result.ldflow_cpu_s += cpu() - c0
                if profiler:
                    profiler.disable()

    # Informative: the raw pair on one connection held open (what checking a connection out per commit costs).
    at = clock.now().isoformat()
    with raw_engine.connect() as conn:
        conn.execution_options(ldflow_write=True)
        t0 = time.perf_counter()
        for i in range(1, n + 1):
            raw.transition_on(conn, i, at)
        result.raw_held_s = time.perf_counter() - t0

    # The work really happened: every request diagnosed, the chain intact.
    counts = store.counts_by_state()
    if counts.get("diagnosed") != n:
        raise RuntimeError(f"expected {n} diagnosed requests, found {counts}")
    report = store.verify()
    if not report.ok:
        raise RuntimeError(f"audit chain broken after the benchmark: {report.reason}")
    with raw_engine.connect() as conn:
        if conn.execute(sa.select(sa.func.count()).select_from(raw_events)).scalar_one() != 2 * n:
            raise RuntimeError("raw baseline did not write its rows")

    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
        result.profile = out.getvalue()
    ldflow_engine.dispose()
    raw_engine.dispose()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="transitions per mode (default 2000)")
    parser.add_argument("--sync", nargs="+", default=["FULL", "NORMAL"], choices=["FULL", "NORMAL"])
    parser.add_argument("--nullpool", action="store_true",
                        help="what-if (informative): both engines open and close a connection per transaction "
                             "(NullPool) instead of make_engine's pool")
    parser.add_argument("--checkpoint-every", type=int, default=500,
                        help="sign a checkpoint after every this many transitions, timed with them (default 500)")
    parser.add_argument("--profile", action="store_true", help="cProfile the ldflow phase and print the top costs")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")

    console = Console(width=max(Console().width, 120))
    load_before = os.getloadavg()[0]
    results: list[ModeResult] = []
    with scratch_dir("transitions-") as workdir:
        for mode in args.sync:
            with console.status(f"synchronous={mode}: {args.n} transitions ..."):
                results.append(run_mode(workdir, mode, args.n, args.profile, args.nullpool, args.checkpoint_every))

    pools = sorted({r.pool for r in results})
    pool = f"{'/'.join(pools)} (what-if, not make_engine)" if args.nullpool else f"make_engine ({'/'.join(pools)})"
    table = Table(title=f"Durable single transitions on SQLite (WAL), one commit each — engines: {pool}")
    for col in ("sync", "sqlite3/s", "ldflow/s", "ratio", f"≥ {GOAL}?", "median ratio", "Core/s", "÷ Core",
                "raw µs", "ldflow µs", "raw CPU µs", "ldflow CPU µs"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(r.synchronous, f"{r.dbapi_per_s:,.0f}", f"{r.ldflow_per_s:,.0f}", f"{r.ratio:.2f}",
                      "[green]yes[/green]" if r.ratio >= GOAL else "[red]no[/red]", f"{r.dbapi_median_ratio:.2f}",
                      f"{r.raw_per_s:,.0f}", f"{r.core_ratio:.2f}",
                      f"{r.raw_s / r.n * 1e6:,.0f}", f"{r.ldflow_s / r.n * 1e6:,.0f}",
                      f"{r.raw_cpu_s / r.n * 1e6:,.0f}", f"{r.ldflow_cpu_s / r.n * 1e6:,.0f}")
    console.print(table)
    load_after = os.getloadavg()[0]
    if max(load_before, load_after) > 1.0:
        console.print(f"[yellow]The machine was busy (load average {load_before:.1f} before, {load_after:.1f} after, "
                      f"{os.cpu_count()} CPUs): other processes' CPU and disk use make these figures noisy; "
                      "run again on a quiet machine.[/yellow]")
    console.print("sqlite3 = UPDATE+INSERT on the bare sqlite3 module (one connection held, BEGIN IMMEDIATE, "
                  "COMMIT per pair) — the goal's baseline; Core (raw µs) = the same pair through SQLAlchemy Core "
                  "(connection from the engine per pair); ldflow = Service.diagnose (validate; one write "
                  "transaction: load, aggregate, "
                  "per-request chained audit + sealed head + UPDATE + outbox, commit) plus a signed checkpoint "
                  "every " + str(args.checkpoint_every) + " transitions, timed with them. "
                  "ratio = ldflow/s ÷ sqlite3/s from total times; median ratio = from median times per operation; "
                  "CPU µs = this process's CPU time per operation (the part no disk wait inflates); "
                  "Informative: the raw pair on one connection kept open (no checkout per commit): "
                  + ", ".join(f"{r.synchronous} {r.raw_held_per_s:,.0f}/s" for r in results) + ".")
    for r in results:
        if r.profile:
            console.rule(f"profile of the ldflow phase, synchronous={r.synchronous}")
            print(r.profile)
    emit_json("transitions", {"goal_ratio": GOAL, "env": environment(), "engine": pool,
                              "load_average": [round(load_before, 2), round(load_after, 2)],
                              "modes": [r.as_dict() for r in results],
                              "goal_met": all(r.ratio >= GOAL for r in results)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
