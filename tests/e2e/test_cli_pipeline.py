"""The pipeline commands as a user runs them: ``clock``, ``run``, ``report``, ``export-xapi``, ``serve``.

Every call is a subprocess of the installed ``ldflow`` console script with its own ``LDFLOW_HOME``
(SQLite, the outbox and drop folders) and, where time matters, a simulated clock file. ``run`` and
``serve`` start a Prefect server as they do for a user (5-15 s each here, more under load), so they
are few and each checks all it can per start; they are marked ``slow`` and run in the default suite.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.cli_support import (
    ACTOR,
    EXAMPLES,
    Ldflow,
    Process,
    descendants,
    kill_if_alive,
    still_running,
    wait_for,
)

STEPS = ("pipeline", "intake", "followups", "advance", "dispatch")
TITLE = yaml.safe_load((EXAMPLES / "intake.yaml").read_text(encoding="utf-8"))["title"]
SPONSOR = "dana.reyes@northwind.example"
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Prefect home for the module: its database is created once, later starts are faster."""
    return tmp_path_factory.mktemp("prefect-home")


def ex(name: str) -> str:
    return str(EXAMPLES / name)


# --- clock -------------------------------------------------------------------------------------------

def test_clock_set_show_advance_and_the_commands_read_it(tmp_path: Path, prefect_home: Path) -> None:
    cli = Ldflow(tmp_path / "home", prefect_home)
    assert cli("clock", "set", "2026-05-01T11:00+02:00").out == "simulated now: 2026-05-01T09:00:00+00:00\n"
    assert cli("clock", "show").out == "simulated now: 2026-05-01T09:00:00+00:00\n"
    for step, expected in (("P30D", "2026-05-31T09:00:00"), ("30", "2026-06-30T09:00:00"),
                           ("PT6H", "2026-06-30T15:00:00"), ("P1M", "2026-07-30T15:00:00")):
        assert cli("clock", "advance", step).out == f"simulated now: {expected}+00:00\n", step
    assert cli("clock", "show").out == "simulated now: 2026-07-30T15:00:00+00:00\n"
    rid = cli("submit", "-f", ex("intake.yaml"), "-q").out.strip()
    assert cli("show", rid, "--json").json()["created_at"] == "2026-07-30T15:00:00Z"


def test_clock_refusals_exit_2_and_change_nothing(tmp_path: Path, prefect_home: Path) -> None:
    off = Ldflow(tmp_path / "off", prefect_home, simulated_clock=False)
    for args in (("show",), ("set", "2026-05-01T09:00Z"), ("advance", "P1D")):
        refused = off("clock", *args, code=2)
        assert "LDFLOW_SIMULATED_CLOCK" in refused.err, args
    assert not list((tmp_path / "off").glob("*.json"))

    cli = Ldflow(tmp_path / "home", prefect_home)
    cli("clock", "set", "2026-05-01T09:00Z")
    for duration in ("soon", "P0D", "-P1D", "P1.5D", "0", "30 days"):
        assert "DURATION" in cli("clock", "advance", duration, code=2).err, duration
    assert "is not an ISO 8601 duration" in cli("clock", "advance", "soon", code=2).err
    floating = cli("clock", "set", "2026-05-01T09:00", code=2)
    assert "TIME" in floating.err and "offset" in floating.err
    assert "TIME" in cli("clock", "set", "tomorrow", code=2).err
    assert cli("clock", "show").out == "simulated now: 2026-05-01T09:00:00+00:00\n"


# --- run ---------------------------------------------------------------------------------------------

def test_run_refuses_an_unknown_flow_before_starting_anything(tmp_path: Path, prefect_home: Path) -> None:
    cli = Ldflow(tmp_path / "home", prefect_home)
    refused = cli("run", "--flow", "nightly", code=2)
    assert "nightly" in refused.err and all(step in refused.err for step in STEPS), refused.err
    assert not (tmp_path / "home" / "outbox").exists()


def _mail(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.slow
def test_run_takes_a_dropped_intake_in_and_dispatch_writes_the_mail(tmp_path: Path, prefect_home: Path) -> None:
    cli = Ldflow(tmp_path / "home", prefect_home)
    cli("clock", "set", "2026-11-02T09:00Z")
    dropped = cli.drop("intake.yaml", "kickoff.yaml")
    outbox = cli.home / "outbox"

    # One pass of the whole pipeline: the intake is taken in, its acknowledgement sent as a file.
    summary = cli("run", timeout=300).out
    assert re.search(r"intake\s.*processed 1", summary), summary
    assert not dropped.exists() and (dropped.parent / "processed" / "kickoff.yaml").is_file()
    [request] = cli("list", "--json").json()["items"]
    assert (request["title"], request["state"]) == (TITLE, "received")
    first_pass = set(outbox.glob("*.eml"))
    [acknowledgement] = first_pass
    assert _mail(acknowledgement)["X-Ldflow-Template"] == "intake_acknowledgement"

    # A user's command queues a mail; the dispatch flow alone sends it, and only it.
    cli("diagnose", request["id"], "-f", ex("diagnosis.yaml"))
    result = cli("run", "--flow", "dispatch", "--json", timeout=300).json()
    [step] = result["steps"]
    assert step["step"] == "dispatch" and step["counts"]["sent"] == 1 and result["errors_total"] == 0, result
    assert datetime.fromisoformat(result["now"]) == NOW
    [path] = set(outbox.glob("*.eml")) - first_pass
    mail = _mail(path)
    rid = request["id"]
    assert mail["Subject"] == f"[ldflow #{rid}] Diagnosis: {TITLE}"
    assert [a.addr_spec for a in mail["From"].addresses] == ["ldflow@localhost"]
    assert {a.addr_spec for a in mail["To"].addresses} == {
        SPONSOR, "priya.shah@northwind.example", "tom.okafor@northwind.example", "lena.fischer@northwind.example"}
    assert re.fullmatch(r"<[0-9a-f]{32}@localhost>", mail["Message-ID"])
    assert mail["Date"].datetime == NOW  # the simulated clock, not the machine's
    assert (mail["X-Ldflow-Request"], mail["X-Ldflow-Template"]) == (str(rid), "diagnosis_summary")
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",))
    assert text is not None and TITLE in text.get_content() and f"[ldflow #{rid}]" in text.get_content()


# --- report and export-xapi ----------------------------------------------------------------------------

@dataclass
class Measured:
    cli: Ldflow
    measured: int
    received: int


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory, prefect_home: Path) -> Measured:
    """The README walk-through up to ``measure`` (request 1), and one request left as received."""
    cli = Ldflow(tmp_path_factory.mktemp("measured-home"), prefect_home)
    cli("clock", "set", "2026-11-02T09:00Z")
    rid = int(cli("submit", "-f", ex("intake.yaml"), "-q").out)
    for args in (("diagnose", rid, "-f", ex("diagnosis.yaml")), ("plan", "draft", rid, "-f", ex("plan.yaml")),
                 ("plan", "approve", rid, "--by", SPONSOR, "--actor", SPONSOR),
                 ("design", rid, "-f", ex("design.yaml")), ("deliver", rid, "-f", ex("delivery.yaml")),
                 ("clock", "set", "2027-02-10T09:00Z"),  # every checkpoint due: results are not taken early
                 ("record", rid, "-f", ex("result.yaml")),
                 ("record", rid, "--checkpoint", "reaction:P1D", "--value", "88"),
                 ("record", rid, "--checkpoint", "discovery:P90D", "--value", "74"),
                 ("record", rid, "--checkpoint", "win-rate:P90D", "--value", "22.5", "--comparison", "19"),
                 ("measure", rid)):
        cli(*args)
    received = int(cli("submit", "-f", ex("intake-crm.json"), "-q").out)
    return Measured(cli, rid, received)


def test_report_of_a_measured_request_in_text_and_html(measured: Measured, tmp_path: Path) -> None:
    cli, rid = measured.cli, measured.measured
    text = cli("report", rid).out
    assert TITLE in text and "Hello team," in text  # the report goes to the sponsor, requester and stakeholders
    assert "Win rate on qualified opportunities: from 18% to 22.5% (target 23%: partly there)" in text
    assert text.count("target met") == 2
    assert "Benefit-cost ratio 4.42, return on investment 342.1%" in text  # on the isolated benefit

    html = cli("report", rid, "--format", "html").out
    assert html.lstrip().startswith("<!DOCTYPE html>") and f"<strong>{TITLE}</strong>" in html
    assert "partly there" in html and "Benefit-cost ratio" in html

    target = tmp_path / "reports" / "kickoff.html"
    written = cli("report", rid, "--html", target)
    assert written.out == text and target.read_text(encoding="utf-8") == html
    assert str(target) in written.err


def test_report_json_is_the_reports_data(measured: Measured) -> None:
    cli, rid = measured.cli, measured.measured
    data = cli("report", rid, "--json").json()
    assert data["subject"] == f"Results and thanks: {TITLE}" and data["request"]["id"] == rid
    assert {r["item_id"]: r["outcome"] for r in data["results"]} == \
        {"reaction": "met", "discovery": "met", "win-rate": "partly_met"}
    assert data["outcomes"]["met"] == 2 and data["roi"]["benefit_cost_ratio"] == pytest.approx(4.42, abs=0.005)
    assert data["final"] is False and data["acknowledgement"] == {}  # measured, not yet acknowledged
    assert SPONSOR in [p["email"] for p in data["to"]]
    refused = cli("report", rid, "--json", "--format", "html", code=2)
    assert "json" in refused.err and "--format html" in refused.err


def test_report_refuses_what_it_cannot_report(measured: Measured) -> None:
    cli = measured.cli
    unmeasured = cli("report", measured.received, code=3)  # README exit codes: 3 refused
    assert "measured" in unmeasured.err and "received" in unmeasured.err
    assert "not found" in cli("report", 999, code=4).err  # 4 not found
    assert "format" in cli("report", measured.measured, "--format", "pdf", code=2).err  # 2 invalid input


def test_export_xapi_to_stdout_and_to_a_file(measured: Measured, tmp_path: Path) -> None:
    cli, rid = measured.cli, measured.measured
    statements = cli("export-xapi").json()
    # one statement per delivered and measured event: "delivered" and "evaluated" the programme
    assert [s["verb"]["display"]["en-US"] for s in statements] == ["delivered", "evaluated"]
    assert {s["version"] for s in statements} == {"1.0.3"}
    assert {s["context"]["extensions"]["http://localhost/ldflow/extensions/request-id"] for s in statements} == {rid}
    assert len({str(uuid.UUID(s["id"])) for s in statements}) == 2
    assert len({s["context"]["registration"] for s in statements}) == 1  # one registration per request
    assert {s["actor"]["mbox"] for s in statements} == {f"mailto:{ACTOR}"}
    assert cli("export-xapi", rid).json() == statements  # and again: the same ids, no duplicates in an LRS
    assert cli("export-xapi", measured.received).json() == []  # nothing delivered or measured yet
    assert "not found" in cli("export-xapi", 999, code=4).err

    target = tmp_path / "lrs" / "statements.json"
    written = cli("export-xapi", "-o", target)
    assert written.out == "" and str(target) in written.err
    assert json.loads(target.read_text(encoding="utf-8")) == statements


# --- serve -------------------------------------------------------------------------------------------

SERVE = ("serve", "--interval", "10", "--dispatch-interval", "10")


def _is_prefect_server(p: Process) -> bool:
    return "prefect server start" in p.command


def _is_flow_run(p: Process) -> bool:
    return "prefect.engine" in p.command


@dataclass
class Stopped:
    """What ``ldflow serve`` did: what it listed while serving, its process tree when Ctrl-C was
    pressed, its exit code and output, and which of those processes still ran 30 s after it exited."""

    cli: Ldflow
    listed: list[dict[str, Any]]
    tree: list[Process]
    code: int
    output: str
    left: list[Process]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, prefect_home: Path) -> Stopped:
    """``ldflow serve`` until the pipeline took a dropped intake in, then Ctrl-C, pressed just after a
    scheduled flow run started (a Prefect server start and a few scheduled runs: ~30-90 s)."""
    cli = Ldflow(tmp_path_factory.mktemp("serve-home"), prefect_home)
    cli("clock", "set", "2026-11-02T09:00Z")
    cli.drop("intake.yaml", "kickoff.yaml")
    serving = cli.spawn(*SERVE)
    seen: dict[int, Process] = {}

    def tree() -> list[Process]:
        found = descendants(serving.proc.pid)
        seen.update((p.pid, p) for p in found)
        return found

    def listed() -> list[dict[str, Any]]:
        tree()
        items: list[dict[str, Any]] = cli("list", "--json").json()["items"]
        return items

    try:
        items = wait_for("the dropped intake to be listed", listed, timeout=240, spawned=serving)
        running = {p.pid for p in tree() if _is_flow_run(p)}
        # A flow run starts every 10 s or so: press Ctrl-C just after one started, as a user well may.
        wait_for("a new scheduled flow run",
                 lambda: [p for p in tree() if _is_flow_run(p) and p.pid not in running],
                 timeout=60, spawned=serving, every=0.1)
        at_ctrl_c = tree()
        serving.ctrl_c()
        code = serving.proc.wait(timeout=120)
        left = still_running(at_ctrl_c, within=30)
    finally:
        serving.stop()
        for process in seen.values():
            kill_if_alive(process)
    return Stopped(cli, items, at_ctrl_c, code, serving.output, left)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_serve_runs_the_pipeline_and_ctrl_c_stops_it_leaving_no_process(served: Stopped) -> None:
    assert [(i["title"], i["state"]) for i in served.listed] == [(TITLE, "received")]
    assert (served.cli.home / "dropbox" / "processed" / "kickoff.yaml").is_file()
    assert "Prefect UI: http://127.0.0.1:" in served.output
    assert len([p for p in served.tree if _is_prefect_server(p)]) == 1  # serve started its own Prefect server
    assert served.code in (0, 130), served.output
    assert served.left == [], f"still running 30 s after serve exited: {served.left}"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ctrl_c_during_a_scheduled_run_prints_no_traceback(served: Stopped) -> None:
    assert "Traceback" not in served.output, served.output[-4000:]
    assert served.output.rstrip().endswith("stopped."), served.output[-4000:]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ctrl_c_while_serve_starts_its_prefect_server_leaves_no_server_behind(tmp_path: Path) -> None:
    cli = Ldflow(tmp_path / "home", tmp_path / "prefect-home")  # not shared: it may be left half-made
    serving = cli.spawn(*SERVE)
    server: Process | None = None
    try:
        [server] = wait_for("serve to start a Prefect server",
                            lambda: [p for p in descendants(serving.proc.pid) if _is_prefect_server(p)],
                            timeout=120, spawned=serving, every=0.1)
        serving.ctrl_c()
        code = serving.proc.wait(timeout=60)
        left = still_running([server], within=10)
    finally:
        serving.stop()
        if server is not None:
            kill_if_alive(server)
    assert code in (0, 130) and "Traceback" not in serving.output, serving.output
    assert left == [], f"the Prefect server serve started still ran 10 s after serve exited: {left}"
