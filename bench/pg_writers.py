"""PostgreSQL: concurrent writers on different requests, transitions/s, 4 writers against 1.

Goal (issue 12 item 6): 4 writers >= 2.5x one writer. Each writer is a process with its own
``SqlStore`` (signing key, so heads are sealed) adding notes to its own requests in turn (25 each;
the one writer goes round as many as the 4 share, so documents grow alike), one commit per
note (``Service.add_note``: one write transaction, row lock on the request, per-request chain).
Same run, for comparison: the same 4 writers when every write transaction also takes one global
advisory lock (what ``write_transaction`` did before per-request chains), to show what the lock cost.
Also the CPU each transition costs (the writer's and its PostgreSQL server process's, read from
/proc when the server is on this machine) and the ceiling that puts on N writers: every core busy
at the N writers' CPU per transition, against one writer's wall time per transition.
And, as the machine's own ceiling for commit-bound work, PostgreSQL's ``pgbench`` (a C client, its
simple-update transaction: BEGIN, three statements, COMMIT) with 1 client and with N, in the same run,
when ``pgbench`` is installed (``--no-pgbench`` skips it): what N writers can gain over one here when
a client costs almost nothing.
A database of its own is created on the server (``LDFLOW_TEST_POSTGRES_URL``'s, default
postgresql://postgres@127.0.0.1:5432/test) and dropped afterwards.

    python bench/pg_writers.py [--seconds 8] [--writers 4] [--per-writer 25]
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


def _writer(url: str, ids: list[int], seconds: float, global_lock: bool, start: Any, out: Any) -> None:
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
    for request_id in ids:
        service.add_note(request_id, "warm-up", "bench@example.org")
    backend = _backend_pid(engine)
    start.wait()
    done, t0, cpu0 = 0, time.perf_counter(), _cpu_seconds(backend)
    while time.perf_counter() - t0 < seconds:
        service.add_note(ids[done % len(ids)], f"note {done}", "bench@example.org")
        done += 1
    cpu1 = _cpu_seconds(backend)
    out.put((done, time.perf_counter() - t0, cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]))
    engine.dispose()


def _backend_pid(engine: Any) -> int | None:
    """The server process of the engine's one pooled connection (the writer reuses it for every note),
    when the server runs on this machine (its /proc is ours to read)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    return pid if Path(f"/proc/{pid}/stat").exists() else None


def _cpu_seconds(backend: int | None) -> tuple[float, float]:
    """This process's CPU seconds and its server process's (NaN when that is not on this machine)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    mine = usage.ru_utime + usage.ru_stime
    if backend is None:
        return mine, float("nan")
    fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
    return mine, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(url: str, writers: int, seconds: float, global_lock: bool, ids: list[int]) -> dict[str, float]:
    """``writers`` processes for ``seconds``, each on its share of ``ids`` (no request is shared)."""
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(writers + 1), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, ids[i::writers], seconds, global_lock, start, out))
             for i in range(writers)]
    for p in procs:
        p.start()
    start.wait()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    done = sum(r[0] for r in results)
    wall = sum(r[1] for r in results) / done  # one transition's wall time, each writer's own
    cpu = sum(r[2] + r[3] for r in results) / done  # its CPU: the writer's and its server process's
    return {"per_s": done / max(r[1] for r in results), "wall_ms": wall * 1000, "cpu_ms": cpu * 1000,
            "writer_cpu_ms": sum(r[2] for r in results) / done * 1000}


def _pgbench_binary() -> str | None:
    import glob
    import shutil

    installed = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))  # Debian keeps it off PATH
    return shutil.which("pgbench") or (installed[-1] if installed else None)


def pgbench(binary: str, url: str, clients: list[int], seconds: float) -> dict[int, float]:
    """Transactions/s of pgbench's simple-update script (``-N``) for each client count, on tables of its
    own (scale 10) in the bench's database."""
    import re
    import subprocess

    subprocess.run([binary, "-i", "-q", "-s", "10", url], check=True, capture_output=True, text=True)
    rates = {}
    for n in clients:
        out = subprocess.run([binary, "-N", "-c", str(n), "-j", str(n), "-T", str(max(1, round(seconds))), url],
                             check=True, capture_output=True, text=True).stdout
        match = re.search(r"tps = ([0-9.]+)", out)
        if match is None:
            raise RuntimeError(f"pgbench printed no tps: {out[-500:]}")
        rates[n] = float(match.group(1))
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--per-writer", type=int, default=25,
                        help="requests per writer (each phase has writers × this many; 25)")
    parser.add_argument("--no-pgbench", action="store_true", help="skip the pgbench control")
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
        # each phase on requests of its own, as many in each (the one writer goes round all of them):
        # a request's document holds its notes, so the phases' documents grow alike
        size = args.writers * args.per_writer
        made = [service.submit(intake(i), "bench@example.org") for i in range(3 * size)]
        ids = [int(getattr(r, "id", r)) for r in made]
        engine.dispose()
        load_before = os.getloadavg()[0]
        one = run(url, 1, args.seconds, False, ids[:size])
        many = run(url, args.writers, args.seconds, False, ids[size:2 * size])
        locked = run(url, args.writers, args.seconds, True, ids[2 * size:])
        binary = None if args.no_pgbench else _pgbench_binary()
        control = pgbench(binary, url, [1, args.writers], args.seconds) if binary else {}
        load_after = os.getloadavg()[0]
        engine = make_engine(url)
        report = SqlStore(engine).verify()
        engine.dispose()
        if not report.ok:
            raise RuntimeError(f"audit broken after the benchmark: {report}")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    ratio = many["per_s"] / one["per_s"]
    cores = os.cpu_count() or 1
    # The most N writers can add on this machine when the work is CPU: every core busy with transitions
    # at the N writers' CPU cost each, against one writer's wall time per transition (its CPU and its
    # waits: fsync, round trips). Counts the writers and their server processes, not the WAL writer.
    ceiling = cores * one["wall_ms"] / many["cpu_ms"]
    print(f"1 writer: {one['per_s']:,.0f} transitions/s; {args.writers} writers: {many['per_s']:,.0f}/s = "
          f"{ratio:.2f}× (≥ {GOAL}? {'yes' if ratio >= GOAL else 'no'}); {args.writers} writers behind one "
          f"global lock (before): {locked['per_s']:,.0f}/s = {locked['per_s'] / one['per_s']:.2f}×")
    print(f"1 writer's transition: {one['wall_ms']:.2f} ms wall, {one['cpu_ms']:.2f} ms CPU (writer "
          f"{one['writer_cpu_ms']:.2f} + its server process); with {args.writers}: {many['cpu_ms']:.2f} ms CPU each. "
          f"CPU ceiling on {cores} cores: {ceiling:.2f}× one writer")
    control_ratio = control[args.writers] / control[1] if control else None
    if control_ratio is not None:
        print(f"pgbench (C client, simple update) in the same run: 1 client {control[1]:,.0f} tps, "
              f"{args.writers} clients {control[args.writers]:,.0f} tps = {control_ratio:.2f}× — what "
              f"{args.writers} writers gain over one on this machine when the client costs almost nothing "
              f"(ldflow reaches {ratio / control_ratio:.0%} of it)")
    if max(load_before, load_after) > 1.0:
        print(f"The machine was busy (load average {load_before:.1f} before, {load_after:.1f} after, "
              f"{cores} CPUs): figures are noisy.")
    emit_json("pg_writers", {"goal_ratio": GOAL, "env": environment(), "writers": args.writers,
                             "one_per_s": round(one["per_s"], 1), "many_per_s": round(many["per_s"], 1),
                             "global_lock_per_s": round(locked["per_s"], 1), "ratio": round(ratio, 2),
                             "global_lock_ratio": round(locked["per_s"] / one["per_s"], 2),
                             "one_wall_ms": round(one["wall_ms"], 3), "one_cpu_ms": round(one["cpu_ms"], 3),
                             "many_cpu_ms": round(many["cpu_ms"], 3), "cpu_ceiling": round(ceiling, 2),
                             "pgbench_tps": {str(k): round(v, 1) for k, v in control.items()},
                             "pgbench_ratio": round(control_ratio, 2) if control_ratio else None,
                             "load_average": [round(load_before, 2), round(load_after, 2)],
                             "goal_met": ratio >= GOAL})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
