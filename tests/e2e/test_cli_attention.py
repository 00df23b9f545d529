"""``ldflow attention``, ``ldflow list --attention``, SLA policies (``LDFLOW_SLA_POLICY``), the plan review of
``ldflow plan draft`` and the daily digest of ``ldflow run``, as a user runs them."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from tests.e2e.cli_support import EXAMPLES, Ldflow


@pytest.fixture
def cli(tmp_path: Path) -> Ldflow:
    ldflow = Ldflow(tmp_path / "home", tmp_path / "prefect")
    ldflow.env["LDFLOW_OPS_ADDRESS"] = "L&D ops <ld-ops@northwind.example>"
    ldflow("clock", "set", "2026-03-02T09:00Z")  # a Monday
    return ldflow


def ex(name: str) -> str:
    return str(EXAMPLES / name)


def test_a_request_not_diagnosed_in_time_is_on_the_attention_list(cli: Ldflow, tmp_path: Path) -> None:
    late = cli("submit", "-f", ex("intake.yaml"), "-q").out.strip()
    assert cli("attention").out.startswith("Nothing needs attention (SLA policy: built-in).")
    cli("clock", "advance", "P4D")  # Friday: 4 of 5 business days
    near = cli("attention", "--json").json()
    assert [(i["request_id"], i["sla"], i["status"]) for i in near["items"]] == [(int(late), "diagnose", "near")]
    cli("clock", "advance", "P4D")  # the next Tuesday: 6 of 5 (the weekend not counted)
    fresh = cli("submit", "-f", ex("intake.yaml"), "-q").out.strip()
    text = cli("attention").out
    assert f"#{late} " in text and f"#{fresh} " not in text
    assert "SLA breached     SLA diagnose breached: 6.0 of 5 business days (since 2026-03-02)" in text
    listed = cli("list", "--attention", "--json").json()
    assert [r["id"] for r in listed["items"]] == [int(late)] and listed["total"] == 1
    assert {r["id"] for r in cli("list", "--json").json()["items"]} == {int(late), int(fresh)}

    # a changed policy recomputes the past: 10 business days allowed, a holiday on Wednesday
    (tmp_path / "holidays.yaml").write_text("holidays:\n  - 2026-03-04\n", encoding="utf-8")
    (tmp_path / "sla.yaml").write_text(
        "timezone: Europe/Berlin\nholidays_file: holidays.yaml\nslas:\n"
        "  diagnose: {start: [submitted], stop: [diagnosed], within: 10}\n", encoding="utf-8")
    cli.env["LDFLOW_SLA_POLICY"] = str(tmp_path / "sla.yaml")
    relaxed = cli("attention", "--json").json()
    assert relaxed["items"] == [] and relaxed["policy"] == str(tmp_path / "sla.yaml")
    (tmp_path / "sla.yaml").write_text(
        "timezone: Europe/Berlin\nholidays_file: holidays.yaml\nslas:\n"
        "  diagnose: {start: [submitted], stop: [diagnosed], within: 4}\n", encoding="utf-8")
    [item] = cli("attention", "--json").json()["items"]
    assert "5.0 of 4 business days" in item["text"]  # Wednesday was a holiday


def test_an_invalid_policy_or_holidays_file_is_refused_naming_the_field(cli: Ldflow, tmp_path: Path) -> None:
    cli("submit", "-f", ex("intake.yaml"), "-q")
    policy_file = tmp_path / "sla.yaml"
    cli.env["LDFLOW_SLA_POLICY"] = str(policy_file)
    missing = cli("attention", code=2)
    assert "LDFLOW_SLA_POLICY" in missing.err and "no such file" in missing.err
    policy_file.write_text("slas:\n  diagnose: {start: [recieved], stop: [diagnosed], within: 0}\n", encoding="utf-8")
    bad = cli("attention", code=2)
    assert "slas.diagnose.start" in bad.err and "slas.diagnose.within" in bad.err and "recieved" in bad.err
    policy_file.write_text("timezone: Mars/Olympus\nslas:\n  diagnose: {start: [submitted], stop: [diagnosed], "
                           "within: 5}\n", encoding="utf-8")
    assert "timezone" in cli("attention", code=2).err
    (tmp_path / "holidays.yaml").write_text("holidays:\n  - 2026-12-25\n  - Christmas\n", encoding="utf-8")
    policy_file.write_text("holidays_file: holidays.yaml\nslas:\n  diagnose: {start: [submitted], stop: [diagnosed], "
                           "within: 5}\n", encoding="utf-8")
    holidays = cli("attention", code=2)
    assert "holidays[1]" in holidays.err and "holidays.yaml" in holidays.err
    assert "holidays[1]" in cli("list", "--attention", code=2).err
    assert "holidays[1]" in cli("analytics", code=2).err  # the analytics' SLA section reads the same policy
    (tmp_path / "holidays.yaml").write_text("holidays:\n  - 2026-12-25\n  - {date: 2026-02-30, name: x}\n",
                                            encoding="utf-8")  # date-shaped, but no date: named, not "malformed"
    impossible = cli("analytics", code=2)
    assert "holidays[1].date: '2026-02-30' is not a date" in impossible.err and "Traceback" not in impossible.err


def test_plan_draft_prints_the_plan_review_and_drafts_anyway(cli: Ldflow) -> None:
    rid = cli("submit", "-f", ex("intake.yaml"), "-q").out.strip()
    # the example plan raises one point: its reaction survey counts from the first answer (no minimum sample)
    review = cli("plan", "draft", rid, "-f", ex("plan.yaml")).err
    assert review.count("  - warning:") == 1 and "item 'reaction'" in review and "minimum sample" in review
    drafted = cli("plan", "draft", rid, "-f", ex("plan-crm.yaml"))  # no business-result item
    assert "measurement plan drafted" in drafted.out
    assert "plan review:" in drafted.err and "warning: no item measures a business result" in drafted.err
    as_json = cli("plan", "draft", rid, "-f", ex("plan-crm.yaml"), "--json").json()
    assert any(w.startswith("no item measures a business result") for w in as_json["warnings"])
    assert cli("show", rid, "--json").json()["plan_review"] == as_json["warnings"]


def test_the_pipeline_sends_the_daily_digest_once_a_day(cli: Ldflow, tmp_path: Path) -> None:
    rid = cli("submit", "-f", ex("intake.yaml"), "-q").out.strip()
    cli("clock", "advance", "P8D")  # diagnose breached
    first = cli("run", "--json").json()
    [digest] = [s for s in first["steps"] if s["step"] == "digest"]
    assert digest["counts"]["queued"] == 1  # the ops address (the request has no owner yet)
    second = cli("run", "--json").json()
    assert [s for s in second["steps"] if s["step"] == "digest"][0]["counts"]["queued"] == 0
    mails = []
    for path in sorted((cli.home / "outbox").glob("*.eml")):
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        if str(message["Subject"]).startswith("Attention:"):
            mails.append(message)
    [mail] = mails
    assert mail["To"] == "L&D ops <ld-ops@northwind.example>"
    assert str(mail["Subject"]) == "Attention: 1 item on 1 request (2026-03-10)"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"Request #{rid}:" in text and "SLA diagnose breached: 6.0 of 5 business days" in text
    assert f"/requests/{rid}" in text
    (tmp_path / "digest.eml").write_bytes(bytes(mail))
    cli("clock", "advance", "P1D")  # the next day, still waiting: the next digest
    third = cli("run", "--json").json()
    assert [s for s in third["steps"] if s["step"] == "digest"][0]["counts"]["queued"] == 1
