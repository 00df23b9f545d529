"""Peak RSS of the process running the pipeline, for N requests (goal: <= 250 MB at 100,000).

    python bench/pipeline_rss.py --n 100000

Set-up (not measured, in this process): N delivered requests, each with one
checkpoint (P1D); to make 100,000 affordable the first request goes through
the service and the others are copies of its rows (request document and
checkpoint timer, with their own ids and keys). Then, each in a fresh process
whose peak RSS (``getrusage`` maxrss) is reported:

1. ``pipeline`` flow runs with the simulated clock past the checkpoints: every
   checkpoint fires (2 N outbox rows: survey + owner to-do) and the outbox is
   sent (2 N .eml files);
2. (here, not measured: every result is recorded through the service)
3. a ``pipeline`` flow run that measures the N requests.

Everything in the pipeline is batched (checkpoints 500 at a time, outbox rows
100, requests to measure 500), Prefect result persistence is off and the
tasks return small summaries, so the peak should not grow with N. The last
line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from bench._common import SPONSOR, diagnosis, emit_json, environment, intake, scratch_dir  # noqa: E402

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PLAN = {"items": [{"id": "m1", "framework": "kirkpatrick", "level": 4, "metric": "qualified pipeline per rep",
                   "unit": "EUR", "baseline": {"value": 42000, "date": "2026-02-01", "source": "CRM"},
                   "target": {"value": 55000, "date": "2027-06-30"}, "instrument": "system_report",
                   "respondent": "manager", "checkpoints": ["P1D"],
                   "owner": {"name": "Olga Owner", "email": "olga.owner@example.org"}}]}

CHILD = """
import json, os, resource, sys, time
from flows import prefect_settings
prefect_settings.apply(logging_level="ERROR")
from flows import pipeline
t = time.perf_counter()
summaries = []
for _ in range(int(sys.argv[1])):
    result = pipeline.pipeline(followups_batch=500, dispatch_batch=100, lateness_days=3650)
    summaries.append({s["step"]: {k: v for k, v in s["counts"].items() if v} for s in result["steps"]})
print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "seconds": time.perf_counter() - t, "passes": summaries}))
"""


def _app(home: Path, url: str, clock: Any) -> Any:
    from flows import bootstrap
    from flows.settings import Settings

    return bootstrap.build(Settings(home=home, database_url=url, sqlite_synchronous="NORMAL"), clock=clock)


def seed(home: Path, url: str, n: int, clock: Any) -> None:
    """N delivered requests: one through the service, the rest copies of its rows."""
    from sqlalchemy import insert, select

    from connectors.db.engine import write_transaction
    from connectors.db.tables import checkpoints, requests

    app = _app(home, url, clock)
    engine, service = app.engine, app.service
    r = service.submit(intake(0), "ops@example.org")
    service.diagnose(r.id, diagnosis(), "ops@example.org")
    service.draft_plan(r.id, PLAN, "ops@example.org")
    service.approve_plan(r.id, {"approver": SPONSOR}, SPONSOR)
    service.design(r.id, {"objectives": ["ask three discovery questions before quoting a price"],
                          "format": "workshop", "approach": "practice"}, "ops@example.org")
    service.deliver(r.id, {"start_date": "2026-03-02", "end_date": "2026-03-03", "audience_reached": 40,
                           "format": "workshop"}, "ops@example.org")
    with engine.connect() as conn:
        row = dict(conn.execute(select(requests).where(requests.c.id == r.id)).one()._mapping)
        timer = dict(conn.execute(select(checkpoints).where(checkpoints.c.request_id == r.id)).one()._mapping)
    key_in_doc = f'"key":"{r.id}:'
    assert key_in_doc in row["document"]
    step = 5000
    for first in range(r.id + 1, r.id + n, step):
        ids = range(first, min(first + step, r.id + n))
        with write_transaction(engine) as conn:
            conn.execute(insert(requests), [{**row, "id": i, "head_seq": 0,
                                             "document": row["document"].replace(key_in_doc, f'"key":"{i}:')}
                                            for i in ids])
            conn.execute(insert(checkpoints), [{**timer, "key": f"{i}:m1:P1D", "request_id": i} for i in ids])
    app.close()


def record_all(home: Path, url: str, clock: Any) -> int:
    app = _app(home, url, clock)
    done = 0
    for request in app.store.iter_requests():
        app.service.record(request.id, "m1:P1D", {"value": 51000}, "olga.owner@example.org")
        done += 1
    app.close()
    return done


def child(env: dict[str, str], passes: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(passes)], env=env, capture_output=True, text=True,
                         check=False, cwd=str(_HERE.parent))
    if out.returncode != 0:
        raise SystemExit(f"pipeline process failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    from flows.clock import FileClock

    with scratch_dir("pipeline-rss-") as root:
        home = root / "home"
        home.mkdir()
        url = f"sqlite:///{home / 'ldflow.db'}"
        clock = FileClock(home / "clock.json")
        clock.set(START)
        t = time.perf_counter()
        seed(home, url, args.n, clock)
        print(f"seeded {args.n} delivered requests in {time.perf_counter() - t:.0f} s", flush=True)
        env = {**os.environ, "LDFLOW_HOME": str(home), "LDFLOW_DATABASE_URL": url,
               "LDFLOW_SIMULATED_CLOCK": str(home / "clock.json"), "LDFLOW_SQLITE_SYNCHRONOUS": "NORMAL",
               "PREFECT_HOME": str(root / "prefect"), "PREFECT_LOGGING_LEVEL": "ERROR",
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONPATH": str(_HERE.parent)}
        env.pop("PREFECT_API_URL", None)
        clock.set(START + timedelta(days=3))
        fire = child(env, passes=2)
        print(f"fire + send: {fire['seconds']:.0f} s, peak RSS {fire['maxrss_kb'] / 1024:.0f} MB, "
              f"{fire['passes']}", flush=True)
        recorded = record_all(home, url, clock)
        measure = child(env, passes=1)
        print(f"measure: {measure['seconds']:.0f} s, peak RSS {measure['maxrss_kb'] / 1024:.0f} MB, "
              f"{measure['passes']}", flush=True)
        sent = sum(p["dispatch"].get("sent", 0) for p in fire["passes"])
        measured = measure["passes"][0]["advance"].get("measured", 0)
        assert recorded == args.n and measured == args.n, (recorded, measured)
        assert sent >= 2 * args.n, sent
    peak_mb = max(fire["maxrss_kb"], measure["maxrss_kb"]) / 1024
    print(f"peak RSS of the pipeline process for {args.n} requests: {peak_mb:.0f} MB "
          f"(goal <= 250 MB): {'met' if peak_mb <= 250 else 'NOT met'}")
    emit_json("pipeline_rss", {"n": args.n, "peak_rss_mb": round(peak_mb, 1),
                               "fire_send_s": round(fire["seconds"], 1), "measure_s": round(measure["seconds"], 1),
                               "emails_sent": sent, "env": environment()})


if __name__ == "__main__":
    main()
