"""PostgreSQL: concurrent writers on different requests, transitions/s, 4 writers against 1.

Goal (issue 12 item 6): 4 writers >= 2.5x one writer. Each writer is a process with its own
``SqlStore`` (signing key, so heads are sealed) adding notes to its own requests, one commit per
note (``Service.add_note``: one write transaction, row lock on the request, per-request chain).
Same run, for comparison: the same 4 writers when every write transaction also takes one global
advisory lock (what ``write_transaction`` did before per-request chains), to show what the lock cost.
A database of its own is created on the server (``LDFLOW_TEST_POSTGRES_URL``'s, default
postgresql://postgres@127.0.0.1:5432/test) and dropped afterwards.

    python bench/pg_writers.py [--seconds 8] [--writers 4]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from bench._common import emit_json, environment, intake  # noqa: E402

GOAL = 2.5
GLOBAL_LOCK = 0x6C64666C6F77


def _writer(url: str, request_id: int, seconds: float, global_lock: bool, start: Any, out: Any) -> None:
    from contextlib import contextmanager

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from connectors.db import engine as engine_module
    from connectors.db import store as store_module
    from connectors.db.engine import make_engine
    from connectors.db.store import SqlStore
    from flows.clock import SystemClock
    from flows.service import Service

    if global_lock:  # the "before": every write transaction serialised on one advisory lock
        plain = engine_module.write_transaction

        @contextmanager
        def locked(engine: Any, lock: int | None = None) -> Any:
            with plain(engine, GLOBAL_LOCK) as conn:
                yield conn

        store_module.write_transaction = locked  # type: ignore[assignment]
    engine = make_engine(url)
    service = Service(SqlStore(engine, signing_key=Ed25519PrivateKey.generate()), SystemClock())
    service.add_note(request_id, "warm-up", "bench@example.org")
    start.wait()
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        service.add_note(request_id, f"note {done}", "bench@example.org")
        done += 1
    out.put((done, time.perf_counter() - t0))
    engine.dispose()


def run(url: str, writers: int, seconds: float, global_lock: bool, first_id: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(writers + 1), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, first_id + i, seconds, global_lock, start, out))
             for i in range(writers)]
    for p in procs:
        p.start()
    start.wait()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    return sum(done for done, _ in results) / max(elapsed for _, elapsed in results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args(argv)
    import psycopg

    from connectors.db import schema
    from connectors.db.engine import make_engine
    from connectors.db.store import SqlStore
    from flows.clock import SystemClock
    from flows.service import Service

    admin = os.environ.get("LDFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"bench_writers_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        engine = make_engine(url)
        schema.ensure_schema(engine)
        service = Service(SqlStore(engine), SystemClock())
        n = 1 + args.writers * 2
        for i in range(n):
            service.submit(intake(i), "bench@example.org")
        engine.dispose()
        load_before = os.getloadavg()[0]
        one = run(url, 1, args.seconds, False, 1)
        many = run(url, args.writers, args.seconds, False, 2)
        locked = run(url, args.writers, args.seconds, True, 2 + args.writers)
        load_after = os.getloadavg()[0]
        engine = make_engine(url)
        report = SqlStore(engine).verify()
        engine.dispose()
        if not report.ok:
            raise RuntimeError(f"audit broken after the benchmark: {report}")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    ratio = many / one
    print(f"1 writer: {one:,.0f} transitions/s; {args.writers} writers: {many:,.0f}/s = {ratio:.2f}× "
          f"(≥ {GOAL}? {'yes' if ratio >= GOAL else 'no'}); {args.writers} writers behind one global lock "
          f"(before): {locked:,.0f}/s = {locked / one:.2f}×")
    if max(load_before, load_after) > 1.0:
        print(f"The machine was busy (load average {load_before:.1f} before, {load_after:.1f} after, "
              f"{os.cpu_count()} CPUs): figures are noisy.")
    emit_json("pg_writers", {"goal_ratio": GOAL, "env": environment(), "writers": args.writers,
                             "one_per_s": round(one, 1), "many_per_s": round(many, 1),
                             "global_lock_per_s": round(locked, 1), "ratio": round(ratio, 2),
                             "global_lock_ratio": round(locked / one, 2),
                             "load_average": [round(load_before, 2), round(load_after, 2)],
                             "goal_met": ratio >= GOAL})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
