"""Surveys to respondent groups (issue 8): a checkpoint for a roster of L learners on N requests.

    python bench/surveys.py                 # N=100 requests x L=1,000 learners: 100,000 survey mails
    python bench/surveys.py --n 5 --learners 200
    python bench/surveys.py --aggregate-only   # 100,000 answers aggregated in memory (seconds)

1. **Mails.** N delivered requests, each with a roster of L learners and one survey item due the day
   after delivery (set up beforehand, outside the timing). Timed: ``steps.fire_followups`` (queues
   one survey notification per request, to its L learners, plus the owner's to-do) and
   ``steps.send_outbox`` (dispatch: each learner's mail rendered with its own reply code and signed
   link, and written as an .eml file, temp file + fsync + rename, by the ``FileSender``).
   **Baseline**, in the same run: the same number of stdlib ``EmailMessage`` builds (From/To/Subject/
   Message-ID, a text and an HTML part of the survey's size) each written to its own file with
   ``fsync``. Goal: ldflow's time <= 2 x the baseline's.
2. **Aggregation.** N x L answers (one per learner, seeded into the documents outside the timing).
   Timed: (a) the pure aggregate (``surveys.current_tally`` of every checkpoint: n, response rate,
   mean, median, share at the threshold); (b) the pipeline's window close for all N requests
   (``Service.flag_unanswered``: load each request from SQLite, aggregate, close, commit with its
   audit event). Goal: (a) <= 1 s for 100,000 answers.

Scratch files live in ``.bench/`` and are removed. The last line is JSON.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from bench._common import SPONSOR, diagnosis, emit_json, environment, intake, scratch_dir  # noqa: E402

OPS = "ops@example.org"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OWNER = {"name": "Olga Owner", "email": "olga.owner@example.org"}
PLAN = {"items": [
    {"id": "relevance", "framework": "kirkpatrick", "level": 1, "metric": "Labs rated relevant", "unit": "1-5",
     "target": {"value": 80, "date": "2026-06-30"}, "instrument": "survey", "respondent": "learners",
     "checkpoints": ["P1D"], "owner": OWNER, "survey": {"scale_min": 1, "scale_max": 5, "threshold": 4}},
]}
BRIEF = {"objectives": ["ask three discovery questions before quoting a price"], "format": "workshop",
         "approach": "practice on real calls with manager feedback"}


def roster(n: int) -> dict[str, Any]:
    return {"learners": [{"name": f"Learner {i}", "email": f"learner{i}@sales.example.org", "team": "east"}
                         for i in range(1, n + 1)],
            "teams": [{"team": "east", "manager": {"name": "Mira Khan", "email": "mira.khan@example.org"}}]}


def setup(app: Any, n: int, learners: int) -> list[int]:
    from flows.clock import FixedClock

    clock = app.clock
    assert isinstance(clock, FixedClock)
    ids = []
    delivery = {"start_date": "2026-04-20", "end_date": "2026-04-24", "audience_reached": learners,
                "format": "workshop", "roster": roster(learners)}
    for i in range(n):
        r = app.service.submit(intake(i), OPS)
        app.service.diagnose(r.id, diagnosis(), OPS)
        app.service.draft_plan(r.id, PLAN, OPS)
        app.service.approve_plan(r.id, {"approver": SPONSOR}, SPONSOR)
        app.service.design(r.id, BRIEF, OPS)
        app.service.deliver(r.id, delivery, OPS)
        ids.append(r.id)
    return ids


def baseline(folder: Path, count: int, text: str, html: str) -> float:
    """``count`` stdlib EmailMessage builds, each written to its own file and fsynced; seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for i in range(count):
        m = EmailMessage()
        m["From"] = "Learning & Development <ld@example.org>"
        m["To"] = f"Learner {i} <learner{i}@sales.example.org>"
        m["Subject"] = "Quick check-in (1 day after delivery): Labs rated relevant"
        m["Message-ID"] = make_msgid(domain="example.org")
        m.set_content(text)
        m.add_alternative(html, subtype="html")
        path = folder / f"{i}.eml"
        with path.open("wb") as handle:
            handle.write(m.as_bytes())
            handle.flush()
            os.fsync(handle.fileno())
    return time.perf_counter() - started


def seed_answers(app: Any, ids: list[int]) -> int:
    """One answer per learner (values 1-5) written into each request's checkpoint, outside the timing."""
    from states.groups import SurveyAnswer

    total = 0

    def mutate(request: Any) -> None:
        nonlocal total
        [c] = request.checkpoints
        c.answers = [SurveyAnswer(email=e, value=float(1 + j % 5), at="2026-04-26T10:00:00+00:00", via="reply")
                     for j, e in enumerate(c.asked)]
        total += len(c.answers)
        request.add_note("bench: answers seeded", request.updated_at)

    for rid in ids:
        app.store.update(rid, OPS, mutate, None)
    return total


def aggregate_only(n: int, learners: int) -> None:
    """Only the aggregation: ``n`` checkpoints of ``learners`` answers each, in memory (read back from
    their JSON documents, as a store does), then every checkpoint's tally and the results compared."""
    from datetime import date

    from states import surveys
    from states.checkpoints import Checkpoint, CheckpointStatus, schedule
    from states.groups import SurveyAnswer
    from states.models import MeasurementPlan
    from states.results import compare

    plan = MeasurementPlan.model_validate(PLAN)
    item = plan.items[0]
    checkpoints = []
    for rid in range(n):
        [c] = schedule(rid, plan, date(2026, 4, 24))
        c.status, c.asked = CheckpointStatus.SENT, [f"learner{i}@sales.example.org" for i in range(learners)]
        c.answers = [SurveyAnswer(email=e, value=float(1 + j % 5)) for j, e in enumerate(c.asked)]
        checkpoints.append(Checkpoint.model_validate_json(c.model_dump_json()))
    t0 = time.perf_counter()
    for c in checkpoints:
        t = surveys.current_tally(c, item)
        c.tally, c.value, c.status = t, t.result, CheckpointStatus.CLOSED
        compare(plan, [c])
    seconds = time.perf_counter() - t0
    print(f"aggregating {n * learners:,} answers ({n} checkpoints): {seconds:.3f} s (goal <= 1 s)")
    emit_json("surveys-aggregate", {"env": environment(), "answers": n * learners, "aggregate_s": round(seconds, 4)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="requests (default 100)")
    parser.add_argument("--learners", type=int, default=1000, help="learners per roster (default 1,000)")
    parser.add_argument("--aggregate-only", action="store_true", help="only the aggregation, in memory")
    args = parser.parse_args()
    if args.aggregate_only:
        aggregate_only(args.n, args.learners)
        return

    from flows import bootstrap, steps
    from flows.clock import FixedClock
    from flows.settings import Settings
    from states import surveys

    with scratch_dir("surveys-") as root:
        settings = Settings(home=root / "home", mail_from="ld@example.org")
        app = bootstrap.build(settings, clock=FixedClock(START))
        t0 = time.perf_counter()
        ids = setup(app, args.n, args.learners)
        setup_s = time.perf_counter() - t0
        print(f"setup: {args.n} delivered requests with {args.learners} learners each in {setup_s:.1f} s",
              file=sys.stderr)

        assert isinstance(app.clock, FixedClock)
        app.clock.set(datetime(2026, 4, 25, 10, tzinfo=UTC))  # the day after delivery: every survey is due
        t0 = time.perf_counter()
        followups = steps.fire_followups(app)
        queued_s = time.perf_counter() - t0
        dispatch = steps.send_outbox(app, batch=20)
        ldflow_s = time.perf_counter() - t0
        outbox = settings.outbox_dir
        emls = sorted(outbox.glob("*.eml"))
        surveys_sent = sum(1 for p in emls if b"Quick check-in" in p.read_bytes()[:2000])
        expected = args.n * args.learners
        assert surveys_sent == expected, (surveys_sent, expected, followups.counts, dispatch.counts)
        sample = next(p for p in emls if b"Quick check-in" in p.read_bytes()[:2000])
        from email import message_from_bytes
        from email.policy import default

        parsed = message_from_bytes(sample.read_bytes(), policy=default)
        text_part, html_part = parsed.get_body(("plain",)), parsed.get_body(("html",))
        assert text_part is not None and html_part is not None
        base_s = baseline(root / "baseline", expected, str(text_part.get_content()), str(html_part.get_content()))

        answers = seed_answers(app, ids)
        requests = [app.service.show(rid) for rid in ids]
        items = {r.id: r.plan.items[0] for r in requests}
        t0 = time.perf_counter()
        tallies = [surveys.current_tally(r.checkpoints[0], items[r.id]) for r in requests]
        pure_s = time.perf_counter() - t0
        assert sum(t.n for t in tallies) == answers
        window = timedelta(days=settings.close_after_days)
        t0 = time.perf_counter()
        app.clock.set(datetime(2026, 5, 25, 10, tzinfo=UTC))
        for _ in range(settings.max_reminders):  # the reminders have gone out (to nobody: all answered)
            app.service.send_reminders(OPS, timedelta(days=0), settings.max_reminders)
        remind_s = time.perf_counter() - t0
        app.clock.set(datetime(2026, 6, 25, 10, tzinfo=UTC))
        t0 = time.perf_counter()
        closed = app.service.flag_unanswered(OPS, window, settings.max_reminders)
        close_s = time.perf_counter() - t0
        assert closed == args.n, closed
        assert all(app.service.show(rid).checkpoints[0].tally is not None for rid in ids[:3])
        app.engine.dispose() if app.engine is not None else None

    ratio = ldflow_s / base_s
    rows = [("ldflow followups + dispatch", ldflow_s, expected / ldflow_s),
            ("  of which followups (queue)", queued_s, expected / queued_s),
            ("baseline EmailMessage + fsync", base_s, expected / base_s)]
    print(f"\n{expected:,} survey mails ({args.n} requests x {args.learners} learners)")
    for name, seconds, rate in rows:
        print(f"  {name:<32} {seconds:8.2f} s  {rate:9.0f} mails/s  {seconds / expected * 1000:6.3f} ms/mail")
    print(f"  ratio ldflow / baseline: {ratio:.2f} (goal <= 2)")
    print(f"\naggregating {answers:,} answers: pure {pure_s:.3f} s (goal <= 1 s); "
          f"window close of {closed} requests from SQLite (load, aggregate, commit) {close_s:.2f} s; "
          f"reminder passes {remind_s:.2f} s")
    emit_json("surveys", {"env": environment(), "n": args.n, "learners": args.learners, "mails": expected,
                          "ldflow_s": round(ldflow_s, 3), "queue_s": round(queued_s, 3),
                          "baseline_s": round(base_s, 3), "ratio": round(ratio, 3), "answers": answers,
                          "aggregate_s": round(pure_s, 4), "close_s": round(close_s, 3)})


if __name__ == "__main__":
    main()
