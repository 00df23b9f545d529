"""``ldflow rediagnose`` and a plan revision after approval, run as a user runs them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.test_cli import SPONSOR, Cli, ex


@pytest.fixture()
def cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path)
    cli.clock.set(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    return cli


def _approved(cli: Cli) -> int:
    rid = int(cli("submit", "-f", ex("intake.yaml"), "-q").out.strip())
    cli("diagnose", rid, "-f", ex("diagnosis.yaml"))
    cli("plan", "draft", rid, "-f", ex("plan.yaml"))
    cli("plan", "approve", rid, "-f", ex("approval.yaml"), "--actor", SPONSOR)
    return rid


def test_a_plan_revised_after_delivery_waits_for_the_sponsor_then_reschedules(cli: Cli, tmp_path: Path) -> None:
    rid = _approved(cli)
    cli("design", rid, "-f", ex("design.yaml"))
    cli("deliver", rid, "-f", ex("delivery.yaml"))
    cli.clock.set(datetime(2026, 11, 12, 10, 0, tzinfo=UTC))
    cli("record", rid, "-c", "reaction:P1D", "--value", "88")
    revised = tmp_path / "plan-v2.yaml"
    text = Path(ex("plan.yaml")).read_text()
    assert "checkpoints: [P30D, P90D]" in text
    revised.write_text(text.replace("checkpoints: [P30D, P90D]", "checkpoints: [P30D, P60D]"))

    out = cli("plan", "draft", rid, "-f", revised).out
    assert f"measurement plan v2 drafted (3 items); awaiting approval by {SPONSOR}; v1 stays in force" in out
    plan = cli("plan", "show", rid, "--json").json()
    assert plan["version"] == 1 and plan["draft"]["version"] == 2 and plan["approved_by"] == SPONSOR
    assert "version 2 drafted" in cli("plan", "show", rid).out
    doc = cli("show", rid, "--json").json()
    assert {c["key"].split(":", 1)[1]: c["status"] for c in doc["checkpoints"]}["discovery:P90D"] == "scheduled"

    before = cli.snapshot(rid)
    refused = cli("plan", "approve", rid, "--by", "priya.shah@northwind.example", code=3)
    assert f"approval by the sponsor {SPONSOR}" in refused.err and "nothing was written" in refused.err
    assert cli.snapshot(rid) == before

    out = cli("plan", "approve", rid, "-f", ex("approval.yaml"), "--actor", SPONSOR).out
    assert f"measurement plan v2 approved by {SPONSOR}" in out
    doc = cli("show", rid, "--json").json()
    status = {c["key"].split(":", 1)[1]: c["status"] for c in doc["checkpoints"]}
    assert status == {"reaction:P1D": "closed", "discovery:P30D": "scheduled", "discovery:P90D": "superseded",
                      "win-rate:P90D": "scheduled", "discovery:P60D": "scheduled"}
    assert doc["plan_version"] == 2 and doc["plan_draft"] is None
    history = cli("history", rid).out
    assert "plan v2 drafted, 3 items" in history
    assert "discovery:P90D superseded: plan v2 no longer has it" in history
    types = [h["type"] for h in cli("history", rid, "--json").json()]
    assert types[-4:] == ["plan_revised", "plan_revision_approved", "checkpoint_superseded", "checkpoint_scheduled"]

    cli.clock.set(datetime(2027, 2, 10, 9, 0, tzinfo=UTC))
    for key, value in (("discovery:P30D", "60"), ("discovery:P60D", "74"), ("win-rate:P90D", "22.5")):
        cli("record", rid, "-c", key, "--value", value)
    refused = cli("record", rid, "-c", "discovery:P90D", "--value", "70", code=3)
    assert "discovery:P90D is already superseded" in refused.err
    assert cli("measure", rid, "--json").json()["state"] == "measured"
    refused = cli("plan", "draft", rid, "-f", revised, code=3)
    assert "cannot draft a measurement plan for a measured request" in refused.err


def test_rediagnose_before_design_and_refused_after(cli: Cli) -> None:
    rid = _approved(cli)
    out = cli("rediagnose", rid, "-f", ex("diagnosis-crm.yaml"), "--reason", "the CRM data came in").out
    assert f"request {rid}: re-diagnosed; recommended: tool_fix" in out
    history = cli("history", rid, "--json").json()
    assert history[-1]["type"] == "rediagnosed" and history[-1]["payload"]["reason"] == "the CRM data came in"
    outbox = {row["key"] for row in cli("outbox", "list", "--json").json()}
    version = cli("show", rid, "--json").json()["version"]
    assert {f"{rid}:diagnosis_summary:v2", f"{rid}:diagnosis_summary:v{version}"} <= outbox

    before = cli.snapshot(rid)
    refused = cli("rediagnose", rid, "-f", ex("diagnosis.yaml"), "--reason", "  ", code=3)
    assert "a reason to re-diagnose" in refused.err and "nothing was written" in refused.err
    cli("rediagnose", rid, "-f", ex("diagnosis.yaml"), code=2)  # --reason is required
    refused = cli("diagnose", rid, "-f", ex("diagnosis.yaml"), code=3)  # diagnose itself: as before
    assert "cannot diagnose a diagnosed request" in refused.err
    assert cli.snapshot(rid) == before

    cli("rediagnose", rid, "-f", ex("diagnosis.yaml"), "--reason", "back to the first reading")
    cli("design", rid, "-f", ex("design.yaml"))
    refused = cli("rediagnose", rid, "-f", ex("diagnosis.yaml"), "--reason", "too late", code=3)
    assert refused.err == ("refused: cannot re-diagnose a designed request; missing:\n  - a diagnosed request not "
                           "yet designed or redirected (re-diagnose before either)\nnothing was written.\n")
