"""``ldflow demo``: sample requests through the whole lifecycle on the real flows.

In a fresh data directory (default ``./.ldflow-demo``) with SQLite, a local
mail folder and a simulated clock, four realistic requests are dropped into
the drop folder and taken in by a ``pipeline`` run, then each goes its way:

* "Training for the sales meeting" — diagnosis finds a *practice* gap (they used
  to do it, rarely do now): designed as practice sessions;
* "15-minute e-learning on the new expense tool" — the knowledge can live in a
  job aid: redirected (``job_aid``);
* "Complaints spike after the returns change" — a broken process, not a skill
  gap: redirected (``process_change``);
* "Motivation workshop for the warehouse team" — no performance problem to
  solve: declined.

The simulated clock then jumps 1, 30, 60 and 90 days after delivery with a
``pipeline`` run at each stop: surveys and owner reminders go out (as .eml
files in ``outbox/``), a survey answered by e-mail is read back from the drop
folder, a checkpoint the clock jumped far past is flagged for review instead
of being sent late, sample results are recorded, the requests are measured by
the pipeline and acknowledged with sample recaps, and the results reports go
out. It ends with the board, one full timeline, the e-mail count and
``audit verify``. No network and no Prefect server: Prefect runs in ephemeral
mode with its home inside the demo directory.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

DEFAULT_HOME = Path(".ldflow-demo")
PREFECT_DIR = ".prefect"  # kept across fresh runs: Prefect's own database takes a while to create
OPS = "priya.ops@northwind.example"  # the L&D partner doing the human steps
DELIVERY_END = date(2026, 3, 13)
START = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)


def _person(name: str, email: str, role: str = "") -> dict[str, str]:
    return {"name": name, "email": email, "role": role}


def _checks(**answers: str) -> dict[str, Any]:
    defaults = {"expectations_clear": "yes", "tools_adequate": "yes", "process_adequate": "yes",
                "consequences_aligned": "yes", "simpler_way": "no", "could_do_if_life_depended": "yes",
                "used_to_do_it": "yes", "used_often": "yes", "job_aid_possible": "no"}
    defaults.update(answers)
    return {k: {"answer": v, "evidence": ""} for k, v in defaults.items()}


SALES_LEAD = _person("Marco Ruiz", "marco.ruiz@northwind.example", "Sales director, EMEA")
CFO = _person("Dana Whitfield", "dana.whitfield@northwind.example", "CFO")
OPS_LEAD = _person("Aisha Karim", "aisha.karim@northwind.example", "Head of customer operations")
WAREHOUSE = _person("Tom Becker", "tom.becker@northwind.example", "Warehouse manager")

INTAKES: dict[str, dict[str, Any]] = {
    "sales": {
        "title": "Training for the sales meeting",
        "requester": SALES_LEAD, "sponsor": _person("Elena Novak", "elena.novak@northwind.example", "VP Sales"),
        "stakeholders": [_person("Priya Shah", OPS, "L&D partner")],
        "requested_solution": "A half-day training at the sales kick-off on handling price objections.",
        "business_goal": {"metric": "win rate on qualified deals", "unit": "%", "current_value": 18,
                          "target_value": 24, "target_date": "2026-09-30", "data_source": "CRM win/loss report"},
        "audience": {"description": "field account executives, EMEA", "size": 36},
        "why_now": "Deals are being lost on price since the competitor's discount campaign.",
    },
    "expenses": {
        "title": "15-minute e-learning on the new expense tool",
        "requester": _person("Jonas Berg", "jonas.berg@northwind.example", "Finance operations"),
        "sponsor": CFO,
        "requested_solution": "A 15-minute e-learning module everyone must complete before month end.",
        "business_goal": {"metric": "expense reports returned for correction", "unit": "%",
                          "current_value": 22, "target_value": 8, "target_date": "2026-06-30",
                          "data_source": "expense tool audit log"},
        "audience": {"description": "all staff who travel", "size": 420},
    },
    "complaints": {
        "title": "Complaints spike after the returns change",
        "requester": OPS_LEAD, "sponsor": OPS_LEAD,
        "requested_solution": "Customer-empathy training for the support team.",
        "business_goal": {"metric": "complaints per 1,000 orders", "unit": "per 1,000 orders",
                          "current_value": 9.5, "target_value": 4, "target_date": "2026-07-31",
                          "data_source": "support ticket dashboard"},
        "audience": {"description": "tier-1 support agents", "size": 55},
        "why_now": "Complaints doubled since the new returns process went live.",
    },
    "motivation": {
        "title": "Motivation workshop for the warehouse team",
        "requester": WAREHOUSE, "sponsor": WAREHOUSE,
        "requested_solution": "An outdoor team-building and motivation day.",
    },
}

DIAGNOSES: dict[str, dict[str, Any]] = {
    "sales": {
        "observable_actions": ["ask three discovery questions before discussing price",
                               "restate the customer's objection before answering it"],
        "cause_checks": _checks(could_do_if_life_depended="no", used_to_do_it="yes", used_often="no"),
        "summary": "Reps learned objection handling two years ago but rarely practise it: a practice gap.",
    },
    "expenses": {
        "observable_actions": ["submit an expense report with the right cost centre and receipt attached"],
        "cause_checks": _checks(job_aid_possible="yes", used_to_do_it="no", used_often="no"),
        "summary": "A monthly task with five fiddly steps: the knowledge belongs in a one-page job aid.",
    },
    "complaints": {
        "observable_actions": ["issue a return label during the first call"],
        "cause_checks": _checks(process_adequate="no"),
        "summary": "Agents can't issue return labels any more: the new process routes them to a 5-day queue.",
    },
}


def _item(item_id: str, metric: str, unit: str, target: float, checkpoints: list[str], *, level: int,
          baseline: float | None = None, instrument: str = "system_report", respondent: str = "manager",
          owner: dict[str, str] = SALES_LEAD, value_per_unit: float | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id, "framework": "kirkpatrick", "level": level, "metric": metric, "unit": unit,
        "target": {"value": target, "date": "2026-09-30"}, "instrument": instrument, "respondent": respondent,
        "checkpoints": checkpoints, "owner": owner,
    }
    if baseline is not None:
        item["baseline"] = {"value": baseline, "date": "2026-01-31", "source": "Q4 figures"}
    if value_per_unit is not None:
        item["value_per_unit"] = value_per_unit
    return item


PLANS: dict[str, dict[str, Any]] = {
    "sales": {"items": [
        _item("relevance", "relevance of the practice sessions", "1-5", 4.2, ["P1D"], level=1,
              instrument="survey", respondent="learner"),
        _item("discovery", "discovery questions per recorded call", "questions", 3, ["P30D", "P90D"], level=3,
              baseline=1.2, instrument="observation"),
        _item("win-rate", "win rate on qualified deals", "%", 24, ["P90D"], level=4, baseline=18,
              value_per_unit=12000),
    ], "costs": {"program_cost": 30000, "currency": "EUR"}},
    "expenses": {"items": [
        _item("returned", "expense reports returned for correction", "%", 8, ["P30D", "P60D"], level=4,
              baseline=22, respondent="stakeholder", owner=CFO),
    ]},
    "complaints": {"items": [
        _item("complaints", "complaints per 1,000 orders", "per 1,000 orders", 4, ["P45D", "P90D"], level=4,
              baseline=9.5, owner=OPS_LEAD),
    ]},
}

# (request, checkpoint "<item>:<offset>") -> (value, note) recorded when it comes due.
RESULTS: dict[tuple[str, str], tuple[float, str]] = {
    ("sales", "discovery:P30D"): (2.4, "call recordings, 40 calls sampled"),
    ("sales", "discovery:P90D"): (3.1, "call recordings, 40 calls sampled"),
    ("sales", "win-rate:P90D"): (21.5, "CRM win/loss report, Q2"),
    ("expenses", "returned:P30D"): (12.0, "audit log, April"),
    ("expenses", "returned:P60D"): (7.0, "audit log, May"),
    ("complaints", "complaints:P90D"): (4.8, "ticket dashboard, June"),
}

ACKS: dict[str, dict[str, Any]] = {
    "sales": {
        "recap": ["discovery questions per call rose from 1.2 to 3.1",
                  "win rate rose from 18% to 21.5%: most of the way to 24%"],
        "action_plan": [{"step": "monthly objection-handling practice in team meetings", "owner": "Marco Ruiz",
                         "due": "2026-10-31"},
                        {"step": "add the discovery checklist to the CRM opportunity page", "owner": "Priya Shah"}],
        "contributions": [{"stakeholder": "Elena Novak", "contribution": "protected an hour a week for practice"},
                          {"stakeholder": "Marco Ruiz", "contribution": "coached every rep on a recorded call"}],
        "message": "Thank you for making practice part of the week.",
    },
    "expenses": {
        "recap": ["returned reports fell from 22% to 7% with a one-page job aid instead of an e-learning"],
        "action_plan": [{"step": "link the job aid from the expense tool's submit page", "owner": "Jonas Berg"}],
        "contributions": [{"stakeholder": "Dana Whitfield", "contribution": "agreed to try a job aid first"}],
    },
    "complaints": {
        "recap": ["complaints fell from 9.5 to 4.8 per 1,000 orders once agents could issue labels again"],
        "action_plan": [{"step": "review the returns queue SLA monthly", "owner": "Aisha Karim"}],
        "contributions": [{"stakeholder": "Aisha Karim", "contribution": "changed the process within a week"}],
    },
}


def _prepare(home: Path, fresh: bool) -> Any:
    """A fresh data directory (keeping Prefect's own home) and the demo's settings: SQLite, the
    local mail folders and a simulated clock in it, never a real mail, calendar or Prefect server."""
    if fresh and home.exists():
        for child in home.iterdir():
            if child.name == PREFECT_DIR:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    home.mkdir(parents=True, exist_ok=True)
    from flows import prefect_settings

    prefect_settings.apply_isolated(home / PREFECT_DIR)  # the demo prints what each run did
    from flows.settings import Settings

    return Settings(home=home, database_url=f"sqlite:///{(home / 'ldflow.db').resolve()}",
                    simulated_clock=home / "clock.json", smtp_host=None, imap_host=None, caldav_url=None)


class Demo:
    def __init__(self, settings: Any, console: Any) -> None:
        from flows import bootstrap, pipeline
        from flows.clock import FileClock

        self.console = console
        self.pipeline = pipeline
        self.clock = FileClock(settings.simulated_clock)
        bootstrap.reset()
        self.app = bootstrap.build(settings, clock=self.clock)
        bootstrap.install(self.app)  # the flows' tasks run on the demo's app
        self.service = self.app.service
        self.ids: dict[str, int] = {}
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{time.monotonic() - self.started:5.1f}s[/] {text}")

    def run_pass(self, label: str) -> dict[str, Any]:
        self.say(f"[bold]pipeline run[/] — {label} (simulated now {self.clock.now():%Y-%m-%d %H:%M} UTC)")
        result: dict[str, Any] = self.pipeline.pipeline()
        for step in result["steps"]:
            done = ", ".join(f"{k} {v}" for k, v in step["counts"].items() if v)
            if done:
                self.console.print(f"         {step['step']:<9} {done}")
            for error in step["errors"][:5]:
                self.console.print(f"         [yellow]{step['step']}: {error}[/]")
        return result

    def jump_to(self, days: int) -> None:
        at = datetime.combine(DELIVERY_END, datetime.min.time(), UTC) + timedelta(days=days, hours=10)
        self.clock.set(at)
        self.say(f"[cyan]clock →[/] {days} day(s) after delivery: {at:%Y-%m-%d %H:%M} UTC")

    # --- the human steps -----------------------------------------------------------------------------

    def drop_intakes(self, folder: Path) -> None:
        import yaml

        folder.mkdir(parents=True, exist_ok=True)
        for n, (name, intake) in enumerate(INTAKES.items(), start=1):
            tmp = folder / f"{n:02d}-{name}.yaml.part"
            text = yaml.safe_dump(json.loads(json.dumps(intake)), sort_keys=False)  # copies: no YAML aliases
            tmp.write_text(text, encoding="utf-8")
            tmp.rename(folder / f"{n:02d}-{name}.yaml")
        self.say(f"dropped {len(INTAKES)} new requests into {folder}")

    def find_ids(self) -> None:
        from connectors.db.store import ListFilter

        rows, _ = self.service.list(ListFilter(limit=100))
        titles = {intake["title"]: name for name, intake in INTAKES.items()}
        self.ids = {titles[r.title]: r.id for r in rows if r.title in titles}

    def diagnose_and_plan(self) -> None:
        s = self.service
        s.decline(self.ids["motivation"], {"reason": "No performance problem to solve yet: we agreed to look at "
                                                     "shift patterns and recognition with Tom first."}, OPS)
        for name in ("sales", "expenses", "complaints"):
            rid = self.ids[name]
            request = s.diagnose(rid, DIAGNOSES[name], OPS)
            paths = ", ".join(r.path for r in request.recommendations)
            self.say(f"request {rid} diagnosed: recommended {paths}")
            s.draft_plan(rid, PLANS[name], OPS)
            s.approve_plan(rid, {"approver": request.intake.sponsor.email, "comment": "Agreed."},
                           request.intake.sponsor.email)
        s.design(self.ids["sales"], {
            "objectives": ["ask three discovery questions before discussing price",
                           "restate the customer's objection before answering it"],
            "format": "4 x 45-minute practice sessions with call recordings",
            "approach": "Short demos, then paired practice on the team's own lost deals; managers give feedback.",
            "practice_activities": ["paired role-play on real objections", "call-recording review"],
            "duration": "4 weeks"}, OPS)
        s.redirect(self.ids["expenses"], {
            "kind": "job_aid", "rationale": "A monthly five-step task: a one-page job aid beats a course.",
            "owner": _person("Jonas Berg", "jonas.berg@northwind.example")}, OPS)
        s.redirect(self.ids["complaints"], {
            "kind": "process_change", "rationale": "Agents lost the right to issue return labels; restore it.",
            "owner": OPS_LEAD}, OPS)
        self.say("declined 1, designed 1 (practice), redirected 2 (job aid, process change)")

    def deliver(self) -> None:
        formats = {"sales": "practice sessions", "expenses": "job aid", "complaints": "process change"}
        for name, fmt in formats.items():
            self.service.deliver(self.ids[name], {
                "start_date": (DELIVERY_END - timedelta(days=25)).isoformat(), "end_date": DELIVERY_END.isoformat(),
                "audience_reached": INTAKES[name]["audience"]["size"], "format": fmt}, OPS)
        self.say("3 requests delivered: measurement checkpoints scheduled")

    def record_due(self, later: tuple[tuple[str, str], ...] = ()) -> int:
        """Record the sample results of every checkpoint that has been sent and has a sample value
        (except those answered ``later``)."""
        recorded = 0
        for name in ("sales", "expenses", "complaints"):
            request = self.service.show(self.ids[name])
            for c in request.checkpoints:
                if (name, f"{c.item_id}:{c.offset}") in later:
                    continue
                sample = RESULTS.get((name, f"{c.item_id}:{c.offset}"))
                if c.status.value == "sent" and sample is not None and request.plan is not None \
                        and request.id is not None:
                    owner = next(i.owner.email for i in request.plan.items if i.id == c.item_id)
                    self.service.record(request.id, c.key, {"value": sample[0], "note": sample[1]}, owner)
                    recorded += 1
        if recorded:
            self.say(f"recorded {recorded} result(s) reported by the checkpoint owners")
        return recorded

    def reply_to_survey(self, outbox_dir: Path, drop_dir: Path) -> bool:
        """Answer the sales request's 1-day survey by e-mail: the reply goes into the drop folder."""
        from email import policy
        from email.message import EmailMessage
        from email.parser import BytesParser

        key = f"{self.ids['sales']}:survey:relevance:P1D"
        for path in sorted(outbox_dir.glob("*.eml")):
            msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            if msg.get("X-Ldflow-Key") == key:
                reply = EmailMessage()
                reply["From"] = msg["To"].addresses[0].display_name + f" <{msg['To'].addresses[0].addr_spec}>"
                reply["To"] = str(msg["From"])
                reply["Subject"] = "Re: " + str(msg["Subject"])
                reply["Message-ID"] = "<reply-relevance-1@northwind.example>"
                reply["In-Reply-To"] = str(msg["Message-ID"])
                reply["References"] = str(msg["Message-ID"])
                reply.set_content("4.6 - practising on our own lost deals was the useful part\n\n"
                                  "On Sat, the L&D team wrote:\n> Quick check-in\n")
                drop_dir.mkdir(parents=True, exist_ok=True)
                (drop_dir / "reply-relevance.eml.part").write_bytes(reply.as_bytes())
                (drop_dir / "reply-relevance.eml.part").rename(drop_dir / "reply-relevance.eml")
                self.say("the sales team answered the 1-day survey by e-mail (dropped into the drop folder)")
                return True
        self.say("[yellow]no 1-day survey e-mail found to answer[/]")
        return False

    def review_flagged(self) -> None:
        for name in ("sales", "expenses", "complaints"):
            request = self.service.show(self.ids[name])
            for c in request.checkpoints:
                if c.status.value == "needs_review" and request.id is not None:
                    self.service.record(request.id, c.key, {
                        "missed_reason": "flagged: the clock passed it by more than the 14-day lateness policy; "
                                         "the 90-day figure covers it"}, OPS)
                    self.say(f"reviewed the flagged checkpoint {c.key}: closed as missed with a reason")

    def acknowledge(self) -> None:
        for name, ack in ACKS.items():
            request = self.service.show(self.ids[name])
            if request.state.value == "measured" and request.id is not None:
                self.service.acknowledge(request.id, ack, OPS)
        self.say("acknowledged the measured requests: the results reports are queued for the stakeholders")


def board(service: Any) -> Any:
    """Requests by state: one column per state that has requests."""
    from rich.table import Table

    from connectors.db.store import ListFilter
    from flows.render import STATE_STYLE

    rows, _ = service.list(ListFilter(limit=500))
    by_state: dict[str, list[str]] = {}
    for r in rows:
        by_state.setdefault(r.state, []).append(f"#{r.id} {r.title}")
    order = ["received", "diagnosed", "designed", "redirected", "delivered", "measured", "acknowledged",
             "declined", "cancelled"]
    table = Table(title="Board", title_justify="left")
    states = [s for s in order if s in by_state]
    for s in states:
        table.add_column(f"{s} ({len(by_state[s])})", style=STATE_STYLE.get(s, ""))
    height = max((len(v) for v in by_state.values()), default=0)
    for i in range(height):
        table.add_row(*[by_state[s][i] if i < len(by_state[s]) else "" for s in states])
    return table


def main(home: Path | None = None, fresh: bool = True) -> int:
    """Run the demo; returns the exit code (0 when every request ended where expected and the audit verifies)."""
    home = (home or DEFAULT_HOME).resolve()
    settings = _prepare(home, fresh)
    from rich.console import Console

    console = Console(highlight=False)
    console.print(f"[bold]ldflow demo[/] in {home} (SQLite, mail written to {home / 'outbox'}, simulated clock)")
    console.print("[dim]Prefect runs without a server (ephemeral mode); its first start takes ~15 s…[/]")
    demo = Demo(settings, console)
    try:
        return _run(demo, home, settings, console)
    finally:
        from flows import bootstrap

        bootstrap.reset()


def _run(demo: Demo, home: Path, settings: Any, console: Any) -> int:
    """The demo's story, on ``demo``'s app; returns the exit code."""
    if demo.service.store.counts_by_state():
        console.print(f"[yellow]{home} already holds requests from an earlier run: run the demo with --fresh "
                      "(the default) to start again.[/]")
        return 1
    demo.clock.set(START)

    demo.drop_intakes(settings.drop_dir)
    demo.run_pass("take in the drop folder")
    demo.find_ids()
    if len(demo.ids) != len(INTAKES):
        console.print(f"[red]expected {len(INTAKES)} requests taken in, found {len(demo.ids)}[/]")
        return 1
    demo.clock.set(START + timedelta(days=3))
    demo.diagnose_and_plan()
    demo.deliver()
    demo.run_pass("send diagnosis summaries and plan approvals")

    demo.jump_to(1)
    demo.run_pass("1-day checkpoints")
    demo.reply_to_survey(settings.outbox_dir, settings.drop_dir)
    demo.jump_to(30)
    demo.run_pass("30-day checkpoints (and the survey reply)")
    demo.record_due(later=(("expenses", "returned:P30D"),))
    demo.say("the 30-day expense figures are not in yet")
    demo.jump_to(60)
    demo.run_pass("60-day checkpoints; the 45-day one is now 15 days late; a reminder for the expense figures")
    demo.record_due()
    demo.review_flagged()
    demo.jump_to(90)
    demo.run_pass("90-day checkpoints")
    demo.record_due()
    demo.jump_to(91)
    demo.run_pass("advance: measure the requests whose checkpoints are all closed")
    demo.acknowledge()
    demo.run_pass("send the results reports")

    from flows.render import timeline

    service = demo.service
    console.print()
    console.print(board(service))
    console.print()
    console.print(timeline(demo.ids["sales"], service.history(demo.ids["sales"])))
    emails = sorted(settings.outbox_dir.glob("*.eml"))
    console.print()
    console.print(f"[bold]{len(emails)} e-mails[/] written to {settings.outbox_dir} "
                  f"({len(list(settings.outbox_dir.glob('*.ics')))} with calendar items)")
    report = service.verify()
    counts = service.store.counts_by_state()
    expected = {"acknowledged": 3, "declined": 1}
    ok = report.ok and counts == expected
    if report.ok:
        console.print(f"[green]audit verify: ok[/] — {report.events_checked} events, "
                      f"{report.requests_checked} requests, hash chain intact")
    else:
        console.print(f"[red]audit verify: BROKEN at event {report.broken_seq}: {report.reason}[/]")
    if counts != expected:
        console.print(f"[red]expected {expected}, got {counts}[/]")
    console.print(f"[dim]done in {time.monotonic() - demo.started:.0f} s. Try: LDFLOW_HOME={home} "
                  f"ldflow report {demo.ids['sales']}[/]")
    return 0 if ok else (6 if not report.ok else 1)
