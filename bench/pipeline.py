"""N requests through the full lifecycle twice: (a) calling the service directly, (b) in ``pipeline`` runs.

    python bench/pipeline.py --n 10000

Both paths do the same work on their own fresh SQLite database under ``.bench/``:
the people's steps (submit, diagnose, plan, approve, design, deliver, record
three checkpoint results, acknowledge) are the same service calls in both (run in
chunks of 250 requests, alternating between the paths, as are the passes); the
pipeline's work — fire the due checkpoints, measure, send every e-mail (written
as .eml files by the embedded FileSender) — is done in (a) by plain calls
(``Service.send_due_checkpoints``/``send_reminders``/``measure`` and
``relay_outbox``) and in (b) by one ``pipeline`` flow run per stop while a
simulated clock jumps 1, 30 and 90 days after delivery (six flow runs in all).

Printed: both totals, the pipeline-work-only times, their ratios (goal for the
total: (b)/(a) <= 1.15), and Prefect's one-off server start, which is reported
apart (it is paid once per process, not per pass). The last line is JSON.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

# Run as a script, Python puts bench/ first on sys.path, where bench/transitions.py would
# shadow the `transitions` library: take bench/ out, put the repository in.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from bench._common import SPONSOR, diagnosis, emit_json, environment, intake, scratch_dir  # noqa: E402

OPS = "ops@example.org"
DELIVERY_END = date(2026, 4, 24)
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PLAN = {"items": [
    {"id": "pipeline", "framework": "kirkpatrick", "level": 4, "metric": "qualified pipeline per rep",
     "unit": "EUR", "baseline": {"value": 42000, "date": "2026-02-01", "source": "CRM"},
     "target": {"value": 55000, "date": "2027-06-30"}, "instrument": "system_report", "respondent": "manager",
     "checkpoints": ["P30D", "P90D"], "owner": {"name": "Olga Owner", "email": "olga.owner@example.org"},
     "value_per_unit": 2.0},
    {"id": "relevance", "framework": "kirkpatrick", "level": 1, "metric": "relevance", "unit": "1-5",
     "target": {"value": 4.2, "date": "2026-06-30"}, "instrument": "survey", "respondent": "learner",
     "checkpoints": ["P1D"], "owner": {"name": "Olga Owner", "email": "olga.owner@example.org"}},
], "costs": {"program_cost": 20000, "currency": "EUR"}}
BRIEF = {"objectives": ["ask three discovery questions before quoting a price"], "format": "workshop",
         "approach": "practice on real calls with manager feedback"}
DELIVERY = {"start_date": "2026-04-20", "end_date": DELIVERY_END.isoformat(), "audience_reached": 40,
            "format": "workshop"}
ACK = {"recap": ["pipeline per rep rose"], "action_plan": [{"step": "monthly practice", "owner": "Olga Owner"}],
       "contributions": [{"stakeholder": "Sam Sponsor", "contribution": "time for practice"}]}
RESULTS = {"relevance:P1D": 4.5, "pipeline:P30D": 47000, "pipeline:P90D": 56000}


def _settings(home: Path, synchronous: str) -> Any:
    from flows.settings import Settings

    return Settings(home=home, database_url=f"sqlite:///{(home / 'ldflow.db').resolve()}",
                    simulated_clock=home / "clock.json", sqlite_synchronous=synchronous)


def _at(days: int) -> datetime:
    return datetime.combine(DELIVERY_END, datetime.min.time(), UTC) + timedelta(days=days, hours=10)


def people(rt: Any, ids: list[int], step: str, n: int = 0) -> list[int]:
    """The people's part of the lifecycle: the same service calls in both paths."""
    s = rt.service
    if step == "start":
        out = []
        for i in range(n):
            r = s.submit(intake(i), OPS)
            s.diagnose(r.id, diagnosis(), OPS)
            s.draft_plan(r.id, PLAN, OPS)
            s.approve_plan(r.id, {"approver": SPONSOR}, SPONSOR)
            s.design(r.id, BRIEF, OPS)
            s.deliver(r.id, DELIVERY, OPS)
            out.append(r.id)
        return out
    if step == "acknowledge":
        for rid in ids:
            s.acknowledge(rid, ACK, OPS)
        return ids
    for rid in ids:  # record the checkpoint results named by ``step``
        for key in step.split(","):
            s.record(rid, key, {"value": RESULTS[key]}, "olga.owner@example.org")
    return ids


def direct_pass(rt: Any, batch: int = 500) -> None:
    """The pipeline's work by plain calls: the service's follow-up commands, measure, the relay."""
    from functools import partial

    from connectors.email.render import render
    from flows.relay import relay_outbox
    from flows.steps import ACTOR, relay_owner

    s, st = rt.service, rt.settings
    while s.send_due_checkpoints(ACTOR, timedelta(days=st.lateness_days), limit=batch)["checked"] == batch:
        pass
    while s.send_reminders(ACTOR, timedelta(days=st.reminder_after_days), st.max_reminders, limit=batch) == batch:
        pass
    last = 0
    while ids := rt.store.measurable_requests(last, batch):
        for rid in ids:
            s.measure(rid, ACTOR)
        last = ids[-1]
    owner = relay_owner()
    while True:
        now = rt.now()
        fn = partial(render, mail_from=st.mail_from, domain="localhost", now=now)
        if relay_outbox(rt.uow, rt.sender, fn, now, owner, batch=100).claimed < 100:
            break


CHUNK = 250  # people's steps run in chunks, alternating between the paths, so load spikes hit both


def lifecycle(rt: Any, n: int, run_pass: Callable[[], Any]) -> list[tuple[str, Callable[[], Any]]]:
    """The whole lifecycle as steps ("people" or "pipeline", what to do)."""
    ids: list[int] = []

    def start(count: int) -> None:
        rt.clock.set(START)
        ids.extend(people(rt, [], "start", count))

    def chunks(step: str) -> list[tuple[str, Callable[[], Any]]]:
        return [("people", lambda first=first: people(rt, ids[first:first + CHUNK], step))
                for first in range(0, n, CHUNK)]

    steps: list[tuple[str, Callable[[], Any]]] = [
        ("people", lambda first=first: start(min(CHUNK, n - first))) for first in range(0, n, CHUNK)]
    steps.append(("pipeline", run_pass))
    for days, record in ((1, "relevance:P1D"), (30, "pipeline:P30D"), (90, "pipeline:P90D")):
        steps.append(("pipeline", lambda days=days: (rt.clock.set(_at(days)), run_pass())))
        steps += chunks(record)
    steps.append(("pipeline", lambda: (rt.clock.set(_at(91)), run_pass())))  # measure
    steps += chunks("acknowledge")
    steps.append(("pipeline", run_pass))  # send the results reports
    return steps


def run_interleaved(paths: dict[str, list[tuple[str, Callable[[], Any]]]],
                    log: Callable[[str], None]) -> dict[str, dict[str, float]]:
    """Run the paths' steps alternately (step 1 of each, then step 2 of each…), timing each, so a
    busy machine slows both paths alike; the order flips every step, so neither path always pays
    for the other's dirty pages being written back."""
    spent = {name: {"people": 0.0, "pipeline": 0.0} for name in paths}
    count = len(next(iter(paths.values())))
    for i in range(count):
        order = list(paths.items()) if i % 2 == 0 else list(reversed(paths.items()))
        for name, steps in order:
            kind, fn = steps[i]
            t = time.perf_counter()
            fn()
            spent[name][kind] += time.perf_counter() - t
        if kind == "pipeline" or i + 1 == count:
            log(f"  step {i + 1}/{count}: " + ", ".join(
                f"{name} {sum(v.values()):.1f} s" for name, v in spent.items()))
    return spent


def check_outbox(rt: Any, n: int) -> int:
    from sqlalchemy import text

    with rt.engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT status, count(*) FROM outbox GROUP BY status")).all())
    # per request: intake ack, diagnosis summary, plan approval, 3 x (survey + owner to-do), results report
    assert rows == {"sent": 10 * n}, rows
    return len(list(rt.settings.outbox_dir.glob("*.eml")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    args = parser.parse_args()
    n = args.n

    def log(text: str) -> None:
        print(text, flush=True)

    with scratch_dir("pipeline-") as root:
        from flows import prefect_settings

        prefect_settings.apply_isolated(root / "prefect", logging_level="ERROR")
        from flows import bootstrap, pipeline

        # (a) direct
        rt_a = bootstrap.build(_settings(root / "direct", args.synchronous))

        # (b) pipeline flow runs: their tasks run on the app installed for this process
        rt_b = bootstrap.build(_settings(root / "flows", args.synchronous))
        bootstrap.install(rt_b)
        log("(b) starting Prefect (ephemeral server)…")
        t = time.perf_counter()
        pipeline.pipeline()  # nothing to do yet: pays the one-off server start
        startup = time.perf_counter() - t
        passes = 0

        def flow_pass() -> None:
            nonlocal passes
            passes += 1
            result = pipeline.pipeline()
            assert result["errors_total"] == 0, result

        log(f"{n} requests: (a) pipeline work by direct calls, (b) in `pipeline` flow runs, step by step…")
        spent = run_interleaved({"direct": lifecycle(rt_a, n, lambda: direct_pass(rt_a)),
                                 "flows": lifecycle(rt_b, n, flow_pass)}, log)
        spent_a, spent_b = spent["direct"], spent["flows"]
        total_a, total_b = sum(spent_a.values()), sum(spent_b.values())
        for rt in (rt_a, rt_b):
            counts = rt.store.counts_by_state()
            assert counts == {"acknowledged": n}, counts
        files_a, files_b = check_outbox(rt_a, n), check_outbox(rt_b, n)
        assert files_a == files_b
        rt_a.close()
        bootstrap.reset()

    ratio = total_b / total_a
    work_ratio = spent_b["pipeline"] / spent_a["pipeline"]
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{n} requests through the full lifecycle (SQLite synchronous={args.synchronous})")
    for col in ("", "(a) direct", "(b) pipeline runs", "(b)/(a)"):
        table.add_column(col, justify="right")
    table.add_row("total", f"{total_a:.1f} s", f"{total_b:.1f} s", f"{ratio:.3f}")
    table.add_row("pipeline work", f"{spent_a['pipeline']:.1f} s", f"{spent_b['pipeline']:.1f} s",
                  f"{work_ratio:.3f}")
    table.add_row("people's steps", f"{spent_a['people']:.1f} s", f"{spent_b['people']:.1f} s",
                  f"{spent_b['people'] / spent_a['people']:.3f}")
    table.add_row("Prefect server start (once)", "", f"{startup:.1f} s", "")
    Console().print(table)
    print(f"{passes} pipeline flow runs; {files_b} e-mails written per path; goal total ratio <= 1.15: "
          f"{'met' if ratio <= 1.15 else 'NOT met'}")
    emit_json("pipeline", {"n": n, "synchronous": args.synchronous, "direct_s": round(total_a, 2),
                           "flows_s": round(total_b, 2), "ratio": round(ratio, 3),
                           "pipeline_work_direct_s": round(spent_a["pipeline"], 2),
                           "pipeline_work_flows_s": round(spent_b["pipeline"], 2),
                           "pipeline_work_ratio": round(work_ratio, 3), "flow_runs": passes,
                           "prefect_start_s": round(startup, 2), "emails": files_b, "env": environment()})


if __name__ == "__main__":
    main()
