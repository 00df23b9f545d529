"""``ldflow analytics`` as a user runs it, over the hand-built history (tests/analytics_history.py):
the known answers in JSON, the same figures as text and CSV, a sponsor's requests, bad input named."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from flows import bootstrap
from flows.clock import FixedClock
from flows.settings import Settings
from tests import analytics_history
from tests.analytics_history import QUINN, SAM
from tests.builders import T0
from tests.e2e.cli_support import Ldflow
from tests.unit.test_analytics import EXPECTED, check


@pytest.fixture
def ldflow(tmp_path: Path) -> tuple[Ldflow, dict[str, int]]:
    runner = Ldflow(tmp_path / "home", tmp_path / "prefect")
    clock = FixedClock(T0)
    app = bootstrap.build(Settings(home=runner.home), clock=clock)
    ids = analytics_history.build(app.service, clock)
    app.engine.dispose()
    return runner, ids


def test_figures_as_json_text_and_csv(ldflow: tuple[Ldflow, dict[str, int]]) -> None:
    run, ids = ldflow
    check(run("analytics", "--json").json(), ids, EXPECTED)
    text = run("analytics").out
    assert "Redirect rate: 33.3% (1 of 3 routed requests solved without training)" in text
    assert "delivered           2  66.7% of redirected/designed" in text
    assert "EUR: isolated 0.00, not isolated 9,000.00, fully loaded costs 8,000.00" in text
    assert "SLA breaches (built-in policy, as of " in text and "diagnosed within 5 business days" in text
    # each section's figures in columns: every row's numbers end where the others' do
    lines = text.splitlines()
    for title in ("Cycle time", "Outcomes"):
        start = next(i for i, line in enumerate(lines) if line.startswith(title)) + 1
        end = next(i for i in range(start, len(lines)) if not lines[i].strip())
        section = [line.rsplit("  n=", 1)[0] for line in lines[start:end]]  # the count of requests follows
        assert len(section) >= 2 and len({len(line) for line in section}) == 1, section
    rows = list(csv.DictReader(io.StringIO(run("analytics", "--csv").out)))
    assert {"section": "redirects", "key": "", "measure": "rate", "value": "0.3333"} in rows
    assert {"section": "cycle_days", "key": "diagnosed", "measure": "p90", "value": "4.0"} in rows
    assert run("analytics", "--json", "--from", "2026-04-01").json()["requests"] == 1
    assert run("analytics", "--json", "--type", "tool_fix").json()["requests"] == 1
    # the plan items' owner (requests 1, 2, 5 have a plan); the redirect's owner went with re-opening
    assert run("analytics", "--json", "--owner", "Olga.Owner@example.org").json()["requests"] == 3
    assert "owner: no request is owned by ivan.it@example.org" in run(
        "analytics", "--owner", "ivan.it@example.org", code=2).err


def test_a_sponsors_requests_and_results(ldflow: tuple[Ldflow, dict[str, int]]) -> None:
    run, ids = ldflow
    got = run("analytics", "--sponsor", SAM.upper(), "--json").json()
    assert got["requests"] == 4
    listed = {r["id"]: r for r in got["sponsor_requests"]}
    assert set(listed) == {ids["design"], ids["redirect"], ids["waiting"], ids["rerouted"]}
    assert listed[ids["design"]]["state"] == "acknowledged"
    assert [(r["item"], r["outcome"]) for r in listed[ids["design"]]["results"]] == [("m1", "partly_met"),
                                                                                      ("m2", "met")]
    quinn = run("analytics", "--sponsor", QUINN).out
    assert f"#{ids['amended']}" in quinn and "cancelled" in quinn and "Safety briefing" in quinn


def test_bad_input_exit_2_naming_the_field(ldflow: tuple[Ldflow, dict[str, int]]) -> None:
    run, _ids = ldflow
    unknown = run("analytics", "--sponsor", "nobody@example.org", code=2)
    assert "sponsor: no request has the sponsor nobody@example.org" in unknown.err
    inverted = run("analytics", "--from", "2026-05-01", "--to", "2026-04-01", code=2)
    assert "to: 2026-04-01 is before from (2026-05-01)" in inverted.err
    both = run("analytics", "--from", "May", "--type", "webinar", "--json", "--csv", code=2)
    assert "csv: give --json or --csv" in both.err
    assert "Traceback" not in both.err
