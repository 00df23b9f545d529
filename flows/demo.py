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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flows.demo_data import (
    ACKS,
    DELIVERY_END,
    DIAGNOSES,
    INTAKES,
    OPS,
    OPS_LEAD,
    PLANS,
    RESULTS,
    START,
    WAREHOUSE,
    person,
)
from states.lifecycle import State
from states.request import CheckpointStatus
from states.wording import plural

DEFAULT_HOME = Path(".ldflow-demo")
PREFECT_DIR = ".prefect"  # kept across fresh runs: Prefect's own database takes a while to create


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
        self.say(f"[cyan]clock →[/] {plural(days, 'day')} after delivery: {at:%Y-%m-%d %H:%M} UTC")

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
            "owner": person("Jonas Berg", "jonas.berg@northwind.example")}, OPS)
        s.redirect(self.ids["complaints"], {
            "kind": "process_change", "rationale": "Agents lost the right to issue return labels; restore it.",
            "owner": OPS_LEAD}, OPS)
        s.add_companion(self.ids["complaints"], {  # a solution mix: the process change, and a script with it
            "kind": "expectations_feedback", "what": "a two-line script for offering a return label",
            "owner": WAREHOUSE, "due": "2026-09-30"}, OPS)
        self.say("declined 1, designed 1 (practice), redirected 2 (job aid, process change + a companion piece)")

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
                if c.status == CheckpointStatus.SENT and sample is not None and request.plan is not None \
                        and request.id is not None:
                    owner = next(i.owner.email for i in request.plan.items if i.id == c.item_id)
                    self.service.record(request.id, c.key, {"value": sample[0], "note": sample[1]}, owner)
                    recorded += 1
        if recorded:
            self.say(f"recorded {plural(recorded, 'result')} reported by the checkpoint owners")
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
                if c.status == CheckpointStatus.NEEDS_REVIEW and request.id is not None:
                    self.service.record(request.id, c.key, {
                        "missed_reason": "flagged: the clock passed it by more than the 14-day lateness policy; "
                                         "the 90-day figure covers it"}, OPS)
                    self.say(f"reviewed the flagged checkpoint {c.key}: closed as missed with a reason")

    def acknowledge(self) -> None:
        for name, ack in ACKS.items():
            request = self.service.show(self.ids[name])
            if request.state == State.MEASURED and request.id is not None:
                self.service.acknowledge(request.id, ack, OPS)
        self.say("acknowledged the measured requests: the results reports are queued for the stakeholders")


def board(service: Any) -> Any:
    """Requests by state: one column per state that has requests."""
    from rich.table import Table

    from connectors.db.store import ListFilter
    from flows.views import STATE_STYLE
    from states.lifecycle import State

    rows, _ = service.list(ListFilter(limit=500))
    by_state: dict[str, list[str]] = {}
    for r in rows:
        by_state.setdefault(r.state, []).append(f"#{r.id} {r.title}")
    table = Table(title="Board", title_justify="left")
    states = [s.value for s in State if s.value in by_state]  # in lifecycle order
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


DEMO_ADMIN = "admin@demo.example"


def serve_web(home: Path | None = None) -> int:
    """Serve the web app over the demo's data until Ctrl-C, with a demo admin account (made, or given a
    new password, now; the password is printed here once and stored only as its hash)."""
    import secrets

    import uvicorn

    from flows import bootstrap
    from flows.settings import Settings
    from flows.web.app import create_app

    home = (home or DEFAULT_HOME).resolve()
    demo = Settings(home=home, database_url=f"sqlite:///{(home / 'ldflow.db').resolve()}",
                    simulated_clock=home / "clock.json", smtp_host=None, imap_host=None, caldav_url=None)
    settings = demo  # the same data directory, database and clock as the demo's run
    app = bootstrap.build(settings)
    password = secrets.token_urlsafe(12)
    if app.accounts.users.user_by_email(DEMO_ADMIN) is None:
        app.accounts.add(DEMO_ADMIN, "Demo Admin", "admin", password)
    else:
        app.accounts.set_password(DEMO_ADMIN, password)
    print(f"ldflow web on {settings.web_url}: sign in as {DEMO_ADMIN} with the password {password} "
          "(made for this demo; Ctrl-C stops)", flush=True)
    uvicorn.run(create_app(app), host=settings.web_host, port=settings.web_port, log_level="warning",
                server_header=False)
    return 0


def try_command(home: Path, *args: str) -> str:
    """A command line a person can paste after the demo, from where they are: ``ldflow`` when the one
    on PATH is this one, else its path (``.venv/bin/ldflow`` after ``make demo``), with the demo's home."""
    import os
    import shlex
    import sys

    def near(path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    script = Path(sys.executable).with_name("ldflow")
    on_path = shutil.which("ldflow")
    same = on_path is not None and script.exists() and os.path.samefile(on_path, script)
    program = "ldflow" if same or not script.exists() else near(script)
    return " ".join([f"LDFLOW_HOME={shlex.quote(near(home))}", shlex.quote(program), *map(shlex.quote, args)])


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
    return _ending(demo, home, settings, console)


def _ending(demo: Demo, home: Path, settings: Any, console: Any) -> int:
    """The board, one timeline, the e-mails and the audit check; the exit code."""
    from flows.timeline import timeline

    service = demo.service
    console.print()
    console.print(board(service))
    console.print()
    console.print(timeline(demo.ids["sales"], service.history(demo.ids["sales"])))
    emails = sorted(settings.outbox_dir.glob("*.eml"))
    console.print()
    console.print(f"[bold]{plural(len(emails), 'e-mail')}[/] written to {settings.outbox_dir} "
                  f"({len(list(settings.outbox_dir.glob('*.ics')))} with calendar items)")
    report = service.verify()
    counts = service.store.counts_by_state()
    expected = {"acknowledged": 3, "declined": 1}
    ok = report.ok and counts == expected
    if report.ok:
        console.print(f"[green]audit verify: ok[/] — {plural(report.events_checked, 'event')}, "
                      f"{plural(report.requests_checked, 'request')}, hash chain intact")
    else:
        console.print(f"[red]audit verify: BROKEN at event {report.broken_seq}: {report.reason}[/]")
    if counts != expected:
        console.print(f"[red]expected {expected}, got {counts}[/]")
    console.print(f"[dim]done in {time.monotonic() - demo.started:.0f} s. Try: "
                  f"{try_command(home, 'report', str(demo.ids['sales']))}[/]")
    return 0 if ok else (6 if not report.ok else 1)
