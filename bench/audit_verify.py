"""``audit verify`` of a large history: events/s, one process against worker processes.

Goal (issue 13): verify 1,000,000 events at >= 200,000 events/s, chains verified in parallel.
The database (SQLite, generated once and kept under .bench/) holds ``--requests`` requests of
``--per-request`` events each, chained exactly as ``SqlStore`` chains them (``audit_chain.chain``,
the newest event's document hash, the heads sealed with the key's HMAC) plus one signed checkpoint.
Each run times ``connectors.db.audit.verify`` (every chain walked and re-hashed, every head's
HMAC, the checkpoint's signature and heads) with 1 worker (in this process) and with ``--workers``
processes, and checks that a tampered copy is caught. Baseline in the same run: a bare loop that
reads the same rows and computes one sha256 per row (no chain logic), to show what the machine's
disk + hashing allow.

    python bench/audit_verify.py [--requests 100000] [--per-request 10] [--workers 2 4]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from bench._common import emit_json, environment  # noqa: E402
from connectors import audit_checkpoints as cps  # noqa: E402
from connectors.audit_chain import GENESIS, chain, doc_hash, head_mac  # noqa: E402
from connectors.db import audit, schema  # noqa: E402
from connectors.db.engine import make_engine  # noqa: E402

GOAL = 200_000
KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"bench audit verify").digest())
DOCUMENT = '{"intake":{"title":"Bench request %d","requester":"r%d@example.org"},"state":"%s"}'


def build(path: Path, n_requests: int, per: int) -> None:
    """The database: requests with ``per`` events each, chained, sealed, one checkpoint."""
    if path.exists():
        path.unlink()
    engine = make_engine(f"sqlite:///{path}", synchronous="NORMAL")
    schema.ensure_schema(engine)
    engine.dispose()
    mac = cps.mac_key(KEY)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    seq = 0
    heads = []
    for rid in range(1, n_requests + 1):
        document = DOCUMENT % (rid, rid, "diagnosed")
        doc = doc_hash("diagnosed", per, document)
        rows = [{"request_id": rid, "type": "note_added" if k else "submitted", "trigger": None, "from_state": None,
                 "to_state": None, "version": k + 1, "actor": "bench@example.org",
                 "at": f"2026-11-01T09:00:{k % 60:02d}.000000Z", "doc": doc if k == per - 1 else "",
                 "payload": f'{{"text":"note {k} of request {rid}"}}'} for k in range(per)]
        chained = chain((0, GENESIS), rows)
        conn.executemany(
            "INSERT INTO audit_events (seq, request_id, rseq, type, trigger, from_state, to_state, version, actor, "
            "at, doc, payload, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(seq + i + 1, r["request_id"], r["rseq"], r["type"], r["trigger"], r["from_state"], r["to_state"],
              r["version"], r["actor"], r["at"], r["doc"], r["payload"], r["prev_hash"], r["hash"])
             for i, r in enumerate(chained)])
        seq += per
        head = (per, chained[-1]["hash"])
        conn.execute("INSERT INTO requests (id, title, state, version, requester_email, sponsor_email, created_at, "
                     "updated_at, head_seq, head_hash, head_mac, document) VALUES "
                     "(?, ?, 'diagnosed', ?, ?, 's@example.org', '2026-11-01 09:00:00', '2026-11-01 09:00:00', "
                     "?, ?, ?, ?)", (rid, f"Bench request {rid}", per, f"r{rid}@example.org", head[0], head[1],
                                     head_mac(mac, rid, *head), document))
        heads.append((rid, *head))
    cp = cps.make(KEY, 1, "2026-11-01T10:00:00+00:00", heads, seq, None)
    conn.execute("INSERT INTO audit_checkpoints (n, created_at, body, heads, signature) VALUES "
                 "(1, '2026-11-01 10:00:00', ?, ?, ?)", (cp.body, cp.heads, cp.signature))
    conn.execute("COMMIT")
    conn.close()


def bare_loop(path: Path) -> float:
    """Baseline: read the same rows and hash each once (seconds)."""
    conn = sqlite3.connect(path)
    t0 = time.perf_counter()
    sha = hashlib.sha256
    for row in conn.execute("SELECT request_id, rseq, type, actor, at, doc, payload, prev_hash, hash FROM audit_events "
                            "ORDER BY request_id, rseq"):
        sha((row[7] + row[6]).encode()).hexdigest()
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--per-request", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args(argv)
    n_events = args.requests * args.per_request
    folder = _HERE.parent / ".bench"
    folder.mkdir(exist_ok=True)
    path = folder / f"audit-verify-r{schema.HEAD}-{args.requests}x{args.per_request}.db"
    if args.rebuild or not path.exists():
        t0 = time.perf_counter()
        build(path, args.requests, args.per_request)
        print(f"built {path.name}: {n_events:,} events in {time.perf_counter() - t0:.0f} s")
    engine = make_engine(f"sqlite:///{path}")
    public, mac = cps.public_hex(KEY), cps.mac_key(KEY)
    load_before = os.getloadavg()[0]
    bare = bare_loop(path)
    results: dict[str, float] = {}
    for workers in (1, *args.workers):
        t0 = time.perf_counter()
        report = audit.verify(engine, public, mac, workers=workers)
        elapsed = time.perf_counter() - t0
        if not report.ok or report.events_checked != n_events:
            raise RuntimeError(f"verify with {workers} worker(s): {report}")
        results[str(workers)] = n_events / elapsed
    load_after = os.getloadavg()[0]
    engine.dispose()
    print(f"bare loop (read + one sha256 per row): {n_events / bare:,.0f} rows/s")
    for workers, rate in results.items():
        mark = "yes" if rate >= GOAL else "no"
        print(f"audit verify, {workers} worker(s): {rate:,.0f} events/s  (≥ {GOAL:,}? {mark}; "
              f"{rate / (n_events / bare):.2f}× the bare loop)")
    if max(load_before, load_after) > 1.0:
        print(f"The machine was busy (load average {load_before:.1f} before, {load_after:.1f} after, "
              f"{os.cpu_count()} CPUs): figures are noisy.")
    best = max(results.values())
    emit_json("audit_verify", {"goal_events_per_s": GOAL, "env": environment(), "events": n_events,
                               "requests": args.requests, "bare_rows_per_s": round(n_events / bare),
                               "events_per_s": {k: round(v) for k, v in results.items()},
                               "load_average": [round(load_before, 2), round(load_after, 2)],
                               "goal_met": best >= GOAL})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
