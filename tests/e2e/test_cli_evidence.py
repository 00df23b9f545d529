"""Evidence as a user meets it in the CLI: an early result refused (exit 3, nothing written) or recorded with
--early, the comparison group's value with --comparison, the guardrail and isolated ROI in the report, and
bad evidence fields refused with the field named (exit 2, nothing written)."""

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


def _delivered(cli: Cli, plan: str) -> int:
    rid = int(cli("submit", "-f", ex("intake.yaml"), "-q").out.strip())
    cli("diagnose", rid, "-f", ex("diagnosis.yaml"))
    cli("plan", "draft", rid, "-f", plan)
    cli("plan", "approve", rid, "-f", ex("approval.yaml"), "--actor", SPONSOR)
    cli("design", rid, "-f", ex("design.yaml"))
    cli("deliver", rid, "-f", ex("delivery.yaml"))
    return rid


def test_early_results_are_refused_unless_a_reason_is_given(cli: Cli) -> None:
    rid = _delivered(cli, ex("plan.yaml"))
    cli.clock.set(datetime(2026, 11, 12, 10, 0, tzinfo=UTC))  # the day after delivery
    before = cli.snapshot(rid)
    refused = cli("record", rid, "-c", "win-rate:P90D", "--value", "23", code=3)
    assert f"{rid}:win-rate:P90D is due on 2027-02-09" in refused.err and "--early REASON" in refused.err
    assert "nothing was written" in refused.err
    assert cli.snapshot(rid) == before

    out = cli("record", rid, "-c", "win-rate:P90D", "--value", "23", "--comparison", "19",
              "--early", "the CRM quarter closed early").out
    assert "(early, due 2027-02-09: the CRM quarter closed early)" in out
    event = cli("history", rid, "--json").json()[-1]
    assert event["type"] == "result_recorded"
    assert (event["payload"]["early_reason"], event["payload"]["comparison_value"]) == (
        "the CRM quarter closed early", 19)


def test_the_report_shows_the_guardrail_and_the_isolated_roi(cli: Cli) -> None:
    rid = _delivered(cli, ex("plan-evidence.yaml"))
    cli.clock.set(datetime(2027, 2, 10, 9, 0, tzinfo=UTC))  # every checkpoint is due
    for key, value in (("incidents:P90D", "7"), ("handling-time:P90D", "395"), ("first-time-fix:P90D", "71"),
                       ("backlog:P30D", "120"), ("backlog:P90D", "90")):
        cli("record", rid, "-c", key, "--value", value)
    measured = cli("measure", rid, "--json").json()
    outcomes = {r["item_id"]: r["outcome"] for r in measured["results"]}
    assert outcomes == {"incidents": "met", "handling-time": "met", "first-time-fix": "met", "backlog": "met"}
    roi = measured["roi"]
    # incidents: 16 expected by the trend, 7 measured: 9 x 1,200 = 10,800; first-time fix: 10 points x 60% x 80%
    # x 800 = 3,840; costs 16,000
    assert (roi["benefits"], roi["raw_benefits"], roi["costs"]) == (14640, 21200, 16000)
    assert roi["roi_percent"] == pytest.approx(-8.5)
    text = cli("report", rid).out
    assert "Average handling time: from 380 to 395 s (guardrail at most 400: held)" in text
    assert "Repeat incidents per month: from 18 to 7 incidents (target at most 10: target met)" in text
    assert "trend line: 16 incidents expected without the programme" in text
    assert "Fully loaded costs: design 4,000 EUR; delivery 5,500 EUR" in text


def test_bad_evidence_fields_exit_2_naming_the_field_and_write_nothing(cli: Cli, tmp_path: Path) -> None:
    rid = int(cli("submit", "-f", ex("intake.yaml"), "-q").out.strip())
    cli("diagnose", rid, "-f", ex("diagnosis.yaml"))
    text = Path(ex("plan-evidence.yaml")).read_text()
    cases = {
        "range": (text.replace("target: {low: 60, high: 100, date: 2027-03-31}",
                               "target: {low: 100, high: 60, date: 2027-03-31}"), "low 100 is above high 60"),
        "negative-cost": (text.replace("{category: design, amount: 4000}", "{category: design, amount: -4000}"),
                          "costs.lines[0].amount"),
        "mixed-currency": (text.replace("{category: design, amount: 4000}",
                                        "{category: design, amount: 4000, currency: USD}"),
                           "USD is not the plan's currency EUR"),
        "confidence": (text.replace("confidence_percent: 80", "confidence_percent: 180"),
                       "items[2].isolation.confidence_percent"),
    }
    before = cli.snapshot(rid)
    for name, (body, expected) in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(body)
        refused = cli("plan", "draft", rid, "-f", path, code=2)
        assert expected in refused.err, (name, refused.err)
    assert cli.snapshot(rid) == before
