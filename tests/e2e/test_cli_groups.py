"""Respondent groups as a user meets them in the CLI: a roster from a CSV file (`ldflow roster`), bad
rosters and thresholds refused naming the field (exit 2, nothing written), one survey mail per learner
with both questions due that day, and `ldflow results` showing n and the response rate."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from tests.e2e.test_cli import SPONSOR, Cli, ex


@pytest.fixture()
def cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path)
    cli.clock.set(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    return cli


def _designed(cli: Cli) -> int:
    rid = int(cli("submit", "-f", ex("intake.yaml"), "-q").out.strip())
    cli("diagnose", rid, "-f", ex("diagnosis.yaml"))
    cli("plan", "draft", rid, "-f", ex("plan-survey.yaml"))
    cli("plan", "approve", rid, "-f", ex("approval.yaml"), "--actor", SPONSOR)
    cli("design", rid, "-f", ex("design.yaml"))
    return rid


def test_a_roster_from_csv_surveys_each_learner_once_and_results_show_n(cli: Cli, tmp_path: Path) -> None:
    rid = _designed(cli)
    assert "roster: 6 learners" in cli("roster", rid, "-f", ex("roster.csv")).out
    cli("deliver", rid, "-f", ex("delivery.yaml"))
    cli.clock.set(datetime(2026, 11, 12, 10, 0, tzinfo=UTC))  # the day after delivery: both P1D items
    cli("run")
    outbox = tmp_path / "outbox"
    mails = [message_from_bytes(p.read_bytes(), policy=default) for p in sorted(outbox.rglob("*.eml"))]
    surveys = [m for m in mails if "Quick check-in" in str(m["Subject"])]
    assert len(surveys) == 6 and len({str(m["To"]) for m in surveys}) == 6
    assert isinstance(surveys[0], EmailMessage)
    body = surveys[0].get_body(("plain",))
    assert body is not None and "2. Confidence in handling a pricing objection" in body.get_content()
    out = cli("results", rid).out
    assert f"{rid}:reaction:P1D  sent" in out and "n=0 of 6 (0%)" in out
    rows = cli("results", rid, "--json").json()["checkpoints"]
    assert [r.get("asked") for r in rows] == [6, 6, None]


def test_bad_rosters_and_thresholds_exit_2_naming_the_field_and_write_nothing(cli: Cli, tmp_path: Path) -> None:
    rid = _designed(cli)
    before = cli.snapshot(rid)
    text = Path(ex("roster.csv")).read_text()
    twice = tmp_path / "twice.csv"
    twice.write_text(text + "Ada Again,ada.brandt@northwind.example,east,,\n")
    err = cli("roster", rid, "-f", twice, code=2).err
    assert "learners" in err and "ada.brandt@northwind.example is listed twice" in err and "nothing was written" in err
    bad = tmp_path / "bad.csv"
    bad.write_text(text.replace("ben.ortiz@northwind.example", "ben.ortiz(at)northwind"))
    assert "learners[1].email" in cli("roster", rid, "-f", bad, code=2).err
    plan = tmp_path / "plan.yaml"
    plan.write_text(Path(ex("plan-survey.yaml")).read_text().replace("threshold: 4,", "threshold: 9,"))
    err = cli("plan", "draft", rid, "-f", plan, code=2).err
    assert "items[0].survey" in err and "threshold: 9 is outside the scale 1–5" in err
    assert cli.snapshot(rid) == before
