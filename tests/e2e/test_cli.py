"""The ``ldflow`` console script, run as a user runs it: real subprocesses, a temp
``LDFLOW_HOME`` (SQLite) and a simulated clock file, with the example input files.

Every call checks that no Python traceback reaches the user. Refusals are checked
to write nothing by comparing the request's version/state and history length
(and the number of requests) before and after.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from flows.clock import FileClock

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
LDFLOW = Path(sys.executable).with_name("ldflow")
ACTOR = "ops@northwind.example"
SPONSOR = "dana.reyes@northwind.example"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Cli:
    """Runs ``ldflow`` against one data directory with one simulated clock."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.clock = FileClock(home / "clock.json")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LDFLOW_")}
        self.env.update({"LDFLOW_HOME": str(home), "LDFLOW_SIMULATED_CLOCK": str(self.clock.path),
                         "LDFLOW_ACTOR": ACTOR, "COLUMNS": "200"})

    def __call__(self, *args: str | Path | int, code: int | None = 0, stdin: str | None = None,
                 env: dict[str, str] | None = None) -> Result:
        proc = subprocess.run([str(LDFLOW), *map(str, args)], capture_output=True, text=True, input=stdin,
                              env={**self.env, **(env or {})}, cwd=self.home, timeout=60)
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        assert "Traceback" not in result.out + result.err, result.err
        if code is not None:
            command = " ".join(map(str, args))
            assert result.code == code, f"ldflow {command} -> {result.code}\n{result.out}\n{result.err}"
        return result

    def many(self, calls: list[tuple[Any, ...]], code: int | None = 0) -> list[Result]:
        """Run independent read-only or refused calls side by side (each is a separate process)."""
        with ThreadPoolExecutor(max_workers=3) as pool:
            return list(pool.map(lambda args: self(*args, code=code), calls))

    def snapshot(self, request_id: int) -> tuple[Any, ...]:
        """The request's version, state and history length as ldflow shows them, and the row counts of
        every table: anything written changes one of them."""
        doc = self("show", request_id, "--json").json()
        hist = self("history", request_id, "--json").json()
        with sqlite3.connect(self.home / "ldflow.db") as db:
            tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            counts = {name: db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in tables}
        return doc["version"], doc["state"], len(hist), counts

    def service(self, at: datetime) -> Any:
        """The real service on this home's database, for seeding data a test is not about."""
        from flows import bootstrap
        from flows.clock import FixedClock
        from flows.settings import Settings

        return bootstrap.build(Settings(home=self.home), clock=FixedClock(at)).service


def ex(name: str) -> str:
    return str(EXAMPLES / name)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("ldflow-home"))
    cli.clock.set(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    return cli


@pytest.fixture(scope="module")
def received(cli: Cli) -> int:
    """A request in ``received`` for the refusal tests."""
    return int(cli("submit", "-f", ex("intake.yaml"), "-q").out.strip())


# --- help ------------------------------------------------------------------------------------------

def test_help_lists_every_command_and_the_exit_codes(cli: Cli) -> None:
    started = time.perf_counter()
    result = cli("--help")
    elapsed = time.perf_counter() - started
    print(f"ldflow --help took {elapsed:.3f} s")  # reported, not asserted
    for command in ("submit", "diagnose", "plan", "design", "redirect", "deliver", "record", "measure",
                    "acknowledge", "decline", "cancel", "note", "show", "list", "history", "audit", "export",
                    "db", "demo"):
        assert command in result.out
    assert "3 transition refused" in " ".join(result.out.split())
    assert "draft" in cli("plan", "--help").out
    assert "--if-version" in cli("design", "--help").out


def test_help_does_not_import_the_heavy_libraries() -> None:
    code = ("import sys; sys.argv = ['ldflow', '--help']\n"
            "import flows.cli\n"
            "heavy = sorted(m for m in ('sqlalchemy', 'prefect', 'pydantic', 'alembic') if m in sys.modules)\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == ""


# --- the walk-through --------------------------------------------------------------------------------

def test_walk_through_design_path_to_acknowledged(cli: Cli) -> None:
    rid = int(cli("submit", "-f", ex("intake.yaml"), "-q").out.strip())
    assert cli("show", rid, "--json").json()["state"] == "received"

    out = cli("diagnose", rid, "-f", ex("diagnosis.yaml")).out
    assert "recommended: job_aid, design" in out

    # Design before measurement is planned: refused, every missing item named, nothing written.
    before = cli.snapshot(rid)
    refused = cli("design", rid, "-f", ex("design.yaml"), code=3)
    assert "missing:" in refused.err
    assert "an approved measurement plan (none drafted" in refused.err
    assert "nothing was written" in refused.err
    assert cli.snapshot(rid) == before

    cli("plan", "draft", rid, "-f", ex("plan.yaml"))
    refused = cli("design", rid, "-f", ex("design.yaml"), code=3)
    assert f"awaits approval by the sponsor {SPONSOR}" in refused.err
    refused = cli("plan", "approve", rid, "--by", "priya.shah@northwind.example", code=3)
    assert f"approval by the sponsor {SPONSOR}" in refused.err
    plan = cli("plan", "show", rid, "--json").json()
    assert plan["approved_by"] is None and [i["id"] for i in plan["plan"]["items"]] == \
        ["reaction", "discovery", "win-rate"]

    cli("plan", "approve", rid, "-f", ex("approval.yaml"), "--actor", SPONSOR)
    assert "approved by dana.reyes@northwind.example" in cli("plan", "show", rid).out

    designed = cli("design", rid, "-f", ex("design.yaml"), "--json").json()
    assert designed["state"] == "designed"

    # Flags override the file.
    delivered = cli("deliver", rid, "-f", ex("delivery.yaml"), "--reached", "44", "--json").json()
    assert delivered["state"] == "delivered"
    assert [c["key"].split(":", 1)[1] for c in delivered["checkpoints"]] == \
        ["reaction:P1D", "discovery:P30D", "discovery:P90D", "win-rate:P90D"]
    doc = cli("show", rid, "--json").json()
    assert doc["delivery"]["audience_reached"] == 44 and doc["delivery"]["end_date"] == "2026-11-11"
    due = {c["key"].split(":", 1)[1]: c["due_at"] for c in doc["checkpoints"]}
    assert due["discovery:P30D"].startswith("2026-12-11T09:00:00")

    refused = cli("measure", rid, code=3)
    assert refused.err.count("is not closed") == 4
    cli("record", rid, "--checkpoint", "nope:P1D", "--value", "1", code=4)

    cli.clock.set(datetime(2026, 11, 12, 10, 0, tzinfo=UTC))
    out = cli("record", rid, "-c", "reaction:P1D", "--value", "88", "--note", "41 of 42 answered").out
    assert "3 checkpoints still open" in out
    cli.clock.set(datetime(2026, 12, 14, 8, 30, tzinfo=UTC))
    cli("record", rid, "-f", ex("result.yaml"))
    cli.clock.set(datetime(2027, 2, 10, 9, 0, tzinfo=UTC))
    cli("record", rid, "-c", "discovery:P90D", "--value", "74")
    cli("record", rid, "-c", "win-rate:P90D", "--value", "22.5", "--comparison", "19")
    refused = cli("record", rid, "-c", "win-rate:P90D", "--value", "23", code=3)
    assert "already closed" in refused.err

    refused = cli("acknowledge", rid, "-f", ex("acknowledgement.yaml"), code=3)
    assert "allowed from delivered: measure, cancel" in refused.err

    measured = cli("measure", rid, "--json").json()
    outcomes = {r["item_id"]: r["outcome"] for r in measured["results"]}
    assert outcomes == {"reaction": "met", "discovery": "met", "win-rate": "partly_met"}
    # 4.5 points, of which 0.5 also happened in the untrained comparison region: 4 x 42,000
    assert measured["roi"]["benefits"] == pytest.approx(168000.0)
    assert measured["roi"]["raw_benefits"] == pytest.approx(189000.0) and measured["roi"]["costs"] == 38000
    assert measured["roi"]["roi_percent"] == pytest.approx(342.1)

    # Acknowledging without the three touchpoints: refused, each named, nothing written.
    before = cli.snapshot(rid)
    refused = cli("acknowledge", rid, "--message", "Thanks!", code=3)
    for item in ("a recap of the takeaways", "an action plan (next steps with owners)",
                 "an acknowledgement of the stakeholders' contributions"):
        assert f"  - {item}" in refused.err
    assert cli.snapshot(rid) == before

    done = cli("acknowledge", rid, "-f", ex("acknowledgement.yaml"), "--json").json()
    assert done == {"id": rid, "state": "acknowledged", "version": done["version"]}

    history = cli("history", rid, "--json").json()
    assert [h["type"] for h in history] == [
        "submitted", "diagnosed", "plan_drafted", "plan_approved", "designed", "delivered",
        "checkpoint_scheduled", "checkpoint_scheduled", "checkpoint_scheduled", "checkpoint_scheduled",
        "result_recorded", "result_recorded", "result_recorded", "result_recorded", "measured", "acknowledged"]
    assert {h["actor"] for h in history} == {ACTOR, SPONSOR}
    assert history[3]["actor"] == SPONSOR
    # Times come from the simulated clock, in UTC.
    assert history[0]["at"] == "2026-11-02T09:00:00.000000Z"
    assert history[10]["at"] == "2026-11-12T10:00:00.000000Z"

    timeline = cli("history", rid).out
    assert "2026-11-12 10:00Z" in timeline and "plan_approved" in timeline and "discovery:P30D = 52" in timeline
    view = cli("show", rid).out
    for heading in ("Intake", "Business goal", "Diagnosis", "Measurement plan", "Design brief", "Delivery",
                    "Checkpoints", "Results", "Closing the loop"):
        assert heading in view
    assert "partly_met" in view

    assert cli("audit", "verify").out.startswith("audit chains ok")
    assert cli("audit", "verify", "--json").json()["ok"] is True


def test_redirect_path_and_note(cli: Cli) -> None:
    rid = int(cli("submit", "-f", ex("intake-crm.json"), "-q").out.strip())
    assert "recommended: tool_fix (" in cli("diagnose", rid, "-f", ex("diagnosis-crm.yaml")).out
    refused = cli("redirect", rid, code=3)
    for item in ("an approved measurement plan", "a redirect kind", "a rationale for the redirect"):
        assert item in refused.err
    cli("plan", "draft", rid, "-f", ex("plan-crm.yaml"))
    cli("plan", "approve", rid, "--by", SPONSOR, "--comment", "fine", "--actor", SPONSOR)
    out = cli("redirect", rid, "-f", ex("redirect.yaml"), "--kind", "process_change").out
    assert "redirected (process_change)" in out
    doc = cli("show", rid, "--json").json()
    assert doc["redirect_record"]["kind"] == "process_change"
    assert doc["redirect_record"]["owner"]["email"] == "lena.fischer@northwind.example"
    assert "Redirect" in cli("show", rid).out

    cli("note", rid, "Lena confirmed the CRM change ships on 1 December.", "--actor", "lena@northwind.example")
    last = cli("history", rid, "--json").json()[-1]
    assert last["type"] == "note_added" and last["actor"] == "lena@northwind.example"


def test_decline_and_cancel_with_example_files(cli: Cli) -> None:
    first = int(cli("submit", "-f", ex("intake.yaml"), "-q").out.strip())
    second = int(cli("submit", "-f", ex("intake.yaml"), "-q").out.strip())
    assert "declined" in cli("decline", first, "-f", ex("decline.yaml")).out
    cli("cancel", second, "-f", ex("cancel.yaml"))
    assert cli("show", second, "--json").json()["closing_reason"].startswith("The West region was merged")
    refused = cli("diagnose", first, "-f", ex("diagnosis.yaml"), code=3)
    assert "only reopen (the request is closed" in refused.err


def test_input_from_stdin_and_submit_flags(cli: Cli) -> None:
    intake = (EXAMPLES / "intake.yaml").read_text()
    rid = int(cli("submit", "-f", "-", "-q", "--title", "Discovery practice, EMEA", stdin=intake).out)
    assert cli("show", rid, "--json").json()["intake"]["title"] == "Discovery practice, EMEA"
    flags = cli("submit", "--title", "Excel basics for finance", "--requester-name", "Ana Ortiz",
                "--requester-email", "ana.ortiz@northwind.example", "--sponsor-name", "Dana Reyes",
                "--sponsor-email", SPONSOR, "--solution", "A one-day Excel course", "--json").json()
    assert flags["state"] == "received" and flags["version"] == 1


# --- exit code 2: invalid input ------------------------------------------------------------------------

def _write(cli: Cli, name: str, text: str) -> Path:
    path = cli.home / name
    path.write_text(text)
    return path


def test_invalid_input_names_the_field_and_writes_nothing(cli: Cli, received: int) -> None:
    before = cli.snapshot(received)
    intake = (EXAMPLES / "intake.yaml").read_text()
    cases: list[tuple[tuple[Any, ...], list[str]]] = []

    no_sponsor = _write(cli, "no-sponsor.yaml", intake.replace("sponsor:", "former_sponsor:"))
    cases.append((("submit", "-f", no_sponsor), ["sponsor: is required", "former_sponsor: is not a known field"]))

    bad_type = _write(cli, "bad-type.yaml", intake.replace("size: 45", "size: about forty"))
    cases.append((("submit", "-f", bad_type), ["audience.size:", "valid integer"]))
    cases.append((("deliver", received, "--reached", "forty"), ["--reached"]))

    diagnosis = (EXAMPLES / "diagnosis.yaml").read_text()
    vague = _write(cli, "vague.yaml", diagnosis.replace("Log the customer's", "Understand the customer's"))
    cases.append((("diagnose", received, "-f", vague), ["observable_actions[1]", "vague verb 'understand'"]))
    aware = _write(cli, "aware.yaml", diagnosis.replace("Ask at least three", "Be aware of"))
    cases.append((("diagnose", received, "-f", aware), ["observable_actions[0]", "vague verb 'be aware of'"]))
    cases.append((("diagnose", received, "--action", "Learners will understand pricing"),
                  ["observable_actions[0]", "vague verb 'understand'"]))

    plan = (EXAMPLES / "plan.yaml").read_text()
    duration = _write(cli, "duration.yaml", plan.replace("[P30D, P90D]", "[30 days, P90D]"))
    cases.append((("plan", "draft", received, "-f", duration),
                   ["items[1].checkpoints[0]", "'30 days' is not an ISO 8601 duration"]))

    broken = _write(cli, "broken.yaml", "title: Sales training\nrequester:\n  name: [unclosed\n")
    cases.append((("submit", "-f", broken), ["broken.yaml", "line 4", "malformed YAML"]))
    broken_json = _write(cli, "broken.json", '{"title": "Sales training",\n "requester": }\n')
    cases.append((("submit", "-f", broken_json), ["broken.json", "line 2", "malformed JSON"]))
    twice = _write(cli, "twice.yaml", "reason: one\nreason: two\n")
    cases.append((("decline", received, "-f", twice), ["twice.yaml", "line 2", "given twice"]))
    cases.append((("submit", "-f", cli.home / "missing.yaml"), ["file:", "no such file"]))
    cases.append((("record", received, "--value", "3"), ["checkpoint: is required"]))
    cases.append((("record", received, "-c", "m1:P30D", "--value", "3", "--missed", "no data"),
                  ["either a value, or missed_reason"]))
    cases.append((("deliver", received, "--start", "2026-11-31", "--end", "2026-11-10"), ["start_date"]))
    cases.append((("plan", "approve", received, "--by", "dana at northwind"), ["approver:", "e-mail address"]))
    cases.append((("list", "--sort", "priority", "--state", "open", "--from", "yesterday"),
                  ["sort:", "state:", "from:"]))
    cases.append((("export", "--format", "xml"), ["format:"]))
    cases.append((("design", "abc"), ["Invalid value for 'ID'"]))
    cases.append((("diagnose", received, "--actor", ""), ["actor:"]))

    results = cli.many([args for args, _ in cases], code=2)
    for (args, expected), result in zip(cases, results, strict=True):
        text = " ".join(result.err.split())
        for fragment in expected:
            assert fragment in text, (args, result.err)
    assert cli.snapshot(received) == before


# --- exit code 3, 4, 5 ---------------------------------------------------------------------------------

def test_transition_refused_lists_every_missing_item(cli: Cli, received: int) -> None:
    before = cli.snapshot(received)
    partial = _write(cli, "partial-diagnosis.yaml", "observable_actions: []\ncause_checks:\n"
                                                    "  used_often: {answer: unknown}\n")
    refused = cli("diagnose", received, "-f", partial, code=3)
    lines = [line for line in refused.err.splitlines() if line.startswith("  - ")]
    assert "  - business goal: target value" in lines
    assert "  - at least one observable action (what people will do differently on the job)" in lines
    assert any("'used_often' is 'unknown'" in line for line in lines)
    assert sum("unanswered" in line for line in lines) == 8
    refused = cli("deliver", received, "-f", ex("delivery.yaml"), code=3)
    assert "'deliver' is not allowed from 'received'" in refused.err or "allowed from received" in refused.err
    assert cli.snapshot(received) == before


def test_not_found_exits_4(cli: Cli) -> None:
    calls: list[tuple[Any, ...]] = [("show", 9999), ("history", 9999, "--json"), ("plan", "show", 9999),
                                    ("diagnose", 9999, "-f", ex("diagnosis.yaml")), ("export", 9999)]
    for result in cli.many(calls, code=4):
        assert "not found: request 9999" in result.err


def test_if_version_conflict_exits_5_and_writes_nothing(cli: Cli, received: int) -> None:
    before = cli.snapshot(received)
    version = before[0]
    for args in (("diagnose", received, "-f", ex("diagnosis.yaml")), ("note", received, "hello"),
                 ("cancel", received, "--reason", "budget")):
        result = cli(*args, "--if-version", version + 1, code=5)
        # A version the request never had: said as seen, not blamed on a concurrent change.
        assert f"request {received} is at version {version}, not {version + 1} (--if-version). Reload it" \
            in result.err and "concurrently" not in result.err
    assert cli.snapshot(received) == before
    ok = cli("note", received, "Checked with Priya: kickoff date confirmed.", "--if-version", version, "--json")
    assert ok.json()["version"] == version + 1
    stale = cli("note", received, "again", "--if-version", version, code=5)  # changed since version N
    assert f"changed concurrently; expected version {version} (now version {version + 1})" in stale.err


# --- exit code 6 and 1 ---------------------------------------------------------------------------------

def test_broken_audit_chain_exits_6_naming_the_first_broken_link(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    rid = int(cli("submit", "-f", ex("intake.yaml"), "-q").out)
    cli("diagnose", rid, "-f", ex("diagnosis.yaml"))
    cli("note", rid, "first note")
    assert cli("audit", "verify", "--json").json()["ok"] is True
    with sqlite3.connect(tmp_path / "ldflow.db") as db:  # a tamperer who removed the append-only triggers
        db.execute("DROP TRIGGER audit_events_no_update")
        db.execute("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 2")
    broken = cli("audit", "verify", code=6)
    assert "BROKEN at request 1 event 2 (seq 2)" in broken.err and "altered" in broken.err
    report = cli("audit", "verify", "--json", code=6).json()
    assert report["ok"] is False and report["broken_seq"] == 2 and report["request_id"] == rid
    assert report["broken_event"] == 2


def test_database_and_settings_errors_exit_1_without_traceback(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    unreachable = cli("list", env={"LDFLOW_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/ldflow"}, code=1)
    assert "cannot reach the database postgresql://nobody@127.0.0.1:1/ldflow" in unreachable.err
    hidden = cli("list", env={"LDFLOW_DATABASE_URL": "postgresql://u:s3cret@127.0.0.1:1/ldflow"}, code=1)
    assert "s3cret" not in hidden.err
    bad = cli("show", 1, env={"LDFLOW_DATABASE_URL": "nosuchdb://x"}, code=1)
    assert "cannot use the database URL nosuchdb://x" in bad.err
    settings = cli("list", env={"LDFLOW_SQLITE_SYNCHRONOUS": "OFF"}, code=1)
    assert "LDFLOW_SQLITE_SYNCHRONOUS" in settings.err


def test_db_upgrade(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    first = cli("db", "upgrade").out
    assert "upgraded from empty to revision" in first
    assert "already at revision" in cli("db", "upgrade").out


# --- list and export -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """Six requests created on different days by different people, in different states."""
    from tests.builders import drive_to, intake_data

    cli = Cli(tmp_path_factory.mktemp("catalogue"))
    people = [("ana@x.example", "sam@x.example", "received"), ("bo@x.example", "sam@x.example", "diagnosed"),
              ("ana@x.example", "tess@x.example", "designed"), ("cy@x.example", "sam@x.example", "declined"),
              ("ana@x.example", "sam@x.example", "acknowledged"), ("bo@x.example", "tess@x.example", "received")]
    titles = ["Negotiation", "Coaching", "Access basics", "Brand voice", "Onboarding", "Meetings"]
    for day, ((requester, sponsor, state), title) in enumerate(zip(people, titles, strict=True), start=1):
        service = cli.service(datetime(2026, 5, day, 12, 0, tzinfo=UTC))
        drive_to(service, state, actor="seed@x.example",
                 intake=intake_data(requester_email=requester, sponsor_email=sponsor, title=f"{title} training"))
        service.store.engine.dispose()
    yield cli


def _ids(result: Result) -> list[int]:
    return [item["id"] for item in result.json()["items"]]


def test_list_filters_sorts_and_pages(catalogue: Cli) -> None:
    expected: list[tuple[tuple[str, ...], list[int]]] = [
        ((), [1, 2, 3, 4, 5, 6]),
        (("--state", "received", "--state", "declined"), [1, 4, 6]),
        (("--requester", "ANA@x.example"), [1, 3, 5]),
        (("--sponsor", "tess@x.example"), [3, 6]),
        (("--from", "2026-05-02", "--to", "2026-05-04"), [2, 3, 4]),
        (("--sort", "title"), [3, 4, 2, 6, 1, 5]),
        (("--sort=-created",), [6, 5, 4, 3, 2, 1]),
        (("--sort=-created", "--limit", "4", "--page", "2"), [2, 1]),
        (("--limit", "2", "--offset", "3"), [4, 5]),
        (("--state", "received", "--sponsor", "tess@x.example", "--sort=-id"), [6]),
    ]
    results = catalogue.many([("list", "--json", *args) for args, _ in expected])
    for (args, ids), result in zip(expected, results, strict=True):
        assert _ids(result) == ids, args
    page = results[7].json()
    assert (page["page"], page["pages"], page["total"], page["limit"]) == (2, 2, 6, 4)
    assert results[0].json()["pages"] == 1
    human = catalogue("list", "--state", "received", "--limit", "1", "--page", "2").out
    assert "page 2 of 2, 2 total" in human and "Meetings training" in human


def test_export_json_and_csv(catalogue: Cli) -> None:
    cli = catalogue
    exported = cli("export", "--format", "json").json()
    assert [e["request"]["id"] for e in exported] == [1, 2, 3, 4, 5, 6]
    assert exported[0]["history"][0]["type"] == "submitted"
    assert exported[4]["history"][-1]["type"] == "acknowledged"

    rows = list(csv.DictReader(io.StringIO(cli("export", "--format", "csv").out)))
    assert [r["state"] for r in rows] == ["received", "diagnosed", "designed", "declined", "acknowledged", "received"]
    done = rows[4]
    assert done["chosen_path"] == "design" and done["recommended_paths"] == "design"
    assert done["delivered_start"] == "2026-04-06" and done["audience_reached"] == "38"
    assert "m1 " in done["results"] and done["requester"] == "ana@x.example"
    assert done["created_at"].startswith("2026-05-05T12:00:00")

    target = cli.home / "out" / "request-5.csv"
    cli("export", 5, "--format", "csv", "--output", target)
    single = list(csv.DictReader(target.open()))
    assert len(single) == 1 and single[0]["id"] == "5"
    one = cli("export", 3).json()
    assert len(one) == 1 and one[0]["request"]["brief"]["format"]


def test_show_and_history_of_a_seeded_request_render(catalogue: Cli) -> None:
    view = catalogue("show", 5).out
    assert "#5 Onboarding training" in view and "acknowledged" in view
    assert date(2026, 5, 5).isoformat() in catalogue("history", 5).out
