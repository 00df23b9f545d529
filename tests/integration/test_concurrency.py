"""Optimistic concurrency and the single audit chain under 8 real processes (SQLite file and PostgreSQL).

Each worker is a separate Python process that builds its own engine and
Service on the same database URL, writes a ready-file, and waits for a shared
start-file so that all of them fire at (nearly) the same moment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.db.engine import make_engine
from connectors.db.store import SqlStore
from connectors.db.tables import audit_events, outbox, requests
from flows.clock import SystemClock
from flows.service import Service
from tests.builders import ACTOR, drive_to, intake_data

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 8

# A worker: build a service, report ready, wait for the start signal, run its commands, print a JSON outcome.
WORKER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from connectors.db.engine import make_engine
    from connectors.db.store import SqlStore
    from flows.clock import SystemClock
    from flows.service import Service
    from states.errors import LdflowError
    from tests.builders import diagnosis_data, intake_data

    url, mode, arg, ready, start, name = sys.argv[1:7]
    service = Service(SqlStore(make_engine(url)), SystemClock())
    service.show(1)  # warm up: connect and load everything before the race
    Path(ready).write_text("ready")
    deadline = time.monotonic() + 60
    while not Path(start).exists():
        if time.monotonic() > deadline:
            sys.exit("no start signal")
        time.sleep(0.001)
    outcome = {"ok": 0, "errors": []}
    try:
        if mode == "diagnose":
            service.diagnose(1, diagnosis_data(), name, expect_version=int(arg))
            outcome["ok"] += 1
        else:  # "chain": submit one request and change it several times
            rid = service.submit(intake_data(title=f"Request of {name}"), name).id
            outcome["ok"] += 1
            for n in range(int(arg)):
                service.add_note(rid, f"note {n} by {name}", name)
                outcome["ok"] += 1
    except LdflowError as exc:
        outcome["errors"].append(type(exc).__name__ + ": " + str(exc))
    print(json.dumps(outcome))
""")


def race(url: str, tmp_path: Path, mode: str, arg: int) -> list[dict[str, object]]:
    """Run WORKERS processes released together; return each one's outcome."""
    start = tmp_path / "start"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs, ready = [], []
    for n in range(WORKERS):
        flag = tmp_path / f"ready-{n}"
        ready.append(flag)
        procs.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, url, mode, str(arg), str(flag), str(start), f"worker-{n}@example.org"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        deadline = time.monotonic() + 120
        while not all(f.exists() for f in ready):
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs if p.poll() is not None]
            assert time.monotonic() < deadline, "workers did not get ready"
            time.sleep(0.01)
        start.write_text("go")
        outcomes = []
        for p in procs:
            out, err = p.communicate(timeout=180)
            assert p.returncode == 0, err
            outcomes.append(json.loads(out.strip().splitlines()[-1]))
        return outcomes
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


@pytest.mark.slow
def test_concurrent_triggers_on_one_request_exactly_one_wins(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    service = Service(SqlStore(engine), SystemClock())
    request = service.submit(intake_data(), ACTOR)
    assert request.id == 1
    events_before = service.history(1)

    outcomes = race(db_url, tmp_path, "diagnose", request.version)

    winners = [o for o in outcomes if o["ok"]]
    losers = [o for o in outcomes if not o["ok"]]
    assert len(winners) == 1, outcomes
    assert len(losers) == WORKERS - 1
    for o in losers:
        (error,) = o["errors"]  # type: ignore[misc]
        assert error.startswith("Conflict: conflict: request 1 changed concurrently; expected version 1"), error
    after = service.show(1)
    assert after.version == request.version + 1 and after.state.value == "diagnosed"
    history = service.history(1)
    assert history[:len(events_before)] == events_before
    assert [e.type for e in history[len(events_before):]] == ["diagnosed"]  # exactly one new audit event
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_events)).scalar_one() == 2
        keys = sorted(conn.execute(select(outbox.c.key)).scalars())
    assert keys == ["1:diagnosis_summary:v2", "1:intake_acknowledgement"]  # the losers queued nothing
    assert service.verify().ok
    engine.dispose()


@pytest.mark.slow
def test_concurrent_writers_on_different_requests_keep_unforked_chains(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    service = Service(SqlStore(engine), SystemClock())
    drive_to(service, "diagnosed")  # request 1: the workers' warm-up reads it
    notes = 5

    outcomes = race(db_url, tmp_path, "chain", notes)

    assert all(o["ok"] == notes + 1 and not o["errors"] for o in outcomes), outcomes
    with engine.connect() as conn:
        rows = conn.execute(select(audit_events.c.seq, audit_events.c.rseq, audit_events.c.prev_hash,
                                   audit_events.c.hash, audit_events.c.request_id)
                            .order_by(audit_events.c.request_id, audit_events.c.rseq)).all()
        n_requests = conn.execute(select(func.count()).select_from(requests)).scalar_one()
    expected = 4 + WORKERS * (notes + 1)  # request 1: submitted, diagnosed, plan drafted, plan approved
    assert sorted(r.seq for r in rows) == list(range(1, expected + 1))  # one global order, no gap
    chains: dict[int, list[Any]] = {}
    for r in rows:
        chains.setdefault(r.request_id, []).append(r)
    for chain in chains.values():  # each request's chain: numbered 1…n, each event linked to the one before
        assert [r.rseq for r in chain] == list(range(1, len(chain) + 1))
        prevs = [r.prev_hash for r in chain]
        assert len(set(prevs)) == len(prevs)  # no two events claim the same predecessor: no fork
        assert all(chain[i].prev_hash == chain[i - 1].hash for i in range(1, len(chain)))
    assert n_requests == WORKERS + 1
    for rid in range(2, WORKERS + 2):  # each worker's request has its own complete, ordered history
        history = service.history(rid)
        assert [e.version for e in history] == list(range(1, notes + 2))
    report = service.verify()
    assert report.ok and report.events_checked == expected and report.requests_checked == WORKERS + 1
    engine.dispose()
