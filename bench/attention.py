"""The attention list (stalled checkpoints + SLA clocks from each open request's history) on SQLite.

Baseline, measured in the same run over the same database: reading what the list needs and
computing nothing — each open request's document and history loaded through the same service
calls (``show``, ``history``) the list makes. The ratio is the cost of the SLA walk and the
checkpoint scan on top of those reads; the pure ``states.sla.breaches`` rate is printed too.

    .venv/bin/python bench/attention.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p).resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import diagnosis, intake, scratch_dir  # noqa: E402
from connectors.ports import ListFilter  # noqa: E402
from flows import attention, bootstrap, sla  # noqa: E402
from flows.clock import FixedClock  # noqa: E402
from flows.settings import Settings  # noqa: E402
from states import sla as pure  # noqa: E402
from states.lifecycle import NON_TERMINAL  # noqa: E402
from tests.builders import T0, plan_data  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with scratch_dir("attention") as home:
        settings = Settings(home=home, database_url=f"sqlite:///{home / 'ldflow.db'}", sqlite_synchronous="NORMAL")
        clock = FixedClock(T0)
        app = bootstrap.build(settings, clock=clock)
        try:
            for i in range(args.requests):  # a mix: received, diagnosed with a plan waiting for the sponsor
                rid = app.service.submit(intake(i), "bench").id
                if i % 2:
                    app.service.diagnose(rid, diagnosis(), "bench")
                    app.service.draft_plan(rid, plan_data(), "bench")
                clock.advance(timedelta(minutes=30))
            clock.advance(timedelta(days=9))
            policy = sla.load_policy(settings)

            def baseline() -> int:
                n, offset = 0, 0
                while True:
                    rows, total = app.service.list(ListFilter(states=tuple(s.value for s in NON_TERMINAL),
                                                              sort="id", limit=500, offset=offset))
                    for row in rows:
                        app.service.show(row.id)
                        n += len(app.service.history(row.id))
                    offset += len(rows)
                    if not rows or offset >= total:
                        return n

            timings: dict[str, list[float]] = {"baseline": [], "attention": []}
            items = 0
            for _ in range(args.rounds):  # alternate, so both see the same machine load
                t = time.perf_counter()
                events = baseline()
                timings["baseline"].append(time.perf_counter() - t)
                t = time.perf_counter()
                items = len(attention.attention_list(app, policy=policy))
                timings["attention"].append(time.perf_counter() - t)
            histories = [pure.entries(app.service.history(r)) for r in range(1, args.requests + 1)]
            t = time.perf_counter()
            found = sum(len(pure.breaches(i, h, policy.rules, policy.calendar, clock.now()))
                        for i, h in enumerate(histories))
            walk = time.perf_counter() - t
        finally:
            app.close()
    base, mine = min(timings["baseline"]), min(timings["attention"])
    print(f"{args.requests} open requests, {events} history events, {items} attention items")
    print(f"baseline (load documents + histories): {base * 1000:8.1f} ms")
    print(f"attention list:                         {mine * 1000:8.1f} ms   ratio {mine / base:.2f}x")
    print(f"states.sla.breaches alone: {args.requests / walk:,.0f} requests/s ({found} breaches, "
          f"{walk * 1000:.1f} ms)")
    print(json.dumps({"bench": "attention", "requests": args.requests, "events": events, "items": items,
                      "baseline_s": round(base, 4), "attention_s": round(mine, 4), "ratio": round(mine / base, 3),
                      "breaches_per_s": round(args.requests / walk)}))


if __name__ == "__main__":
    main()
