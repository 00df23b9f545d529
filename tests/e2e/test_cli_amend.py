"""``ldflow amend`` and ``ldflow reopen``, run as a user runs them (subprocesses, a temp SQLite home,
the example files): the change and its before/after in the history, the new sponsor as the approver,
the re-opening, and refusals (exit 2 naming the field, exit 3 listing what is missing) that write
nothing. (The mail to the new sponsor, and their reply, are in tests/unit/test_amend_mail.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli import EXAMPLES, SPONSOR, Cli

NEW_SPONSOR = "sofia.lind@northwind.example"


def ex(name: str) -> str:
    return str(EXAMPLES / name)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(tmp_path_factory.mktemp("ldflow-amend"))


def _diagnosed_with_a_draft(cli: Cli) -> int:
    rid = int(cli("submit", "-f", ex("intake-crm.json"), "-q").out.strip())
    cli("diagnose", rid, "-f", ex("diagnosis-crm.yaml"))
    cli("plan", "draft", rid, "-f", ex("plan-crm.yaml"))
    return rid


def test_amend_the_sponsor_before_approval_then_the_rest_from_the_example(cli: Cli) -> None:
    rid = _diagnosed_with_a_draft(cli)
    out = cli("amend", rid, "--reason", "Dana moved to the partner channel", "--sponsor-name", "Sofia Lind",
              "--sponsor-email", NEW_SPONSOR).out
    assert f"request {rid}: amended sponsor (state diagnosed, version 4)" in out
    last = cli("history", rid, "--json").json()[-1]
    assert last["type"] == "amended" and last["payload"]["reason"] == "Dana moved to the partner channel"
    assert last["payload"]["changes"]["sponsor"]["before"]["email"] == SPONSOR
    assert last["payload"]["changes"]["sponsor"]["after"]["email"] == NEW_SPONSOR
    assert "sponsor: Dana Reyes, VP Sales <dana.reyes@northwind.example> → Sofia Lind" in cli("history", rid).out

    # the approval request goes to the new sponsor; the old one is refused, the new one approves
    keys = [row["key"] for row in cli("outbox", "list", "--json").json() if row["request_id"] == rid]
    assert f"{rid}:plan_approval_request:v4" in keys
    refused = cli("plan", "approve", rid, "--by", SPONSOR, code=3)
    assert f"approval by the sponsor {NEW_SPONSOR} (not {SPONSOR})" in refused.err
    cli("plan", "approve", rid, "--by", NEW_SPONSOR, "--actor", NEW_SPONSOR)
    cli("redirect", rid, "-f", ex("redirect.yaml"))

    # after approval: the example's sponsor, owners and audience; the approval stands
    done = cli("amend", rid, "-f", ex("amendment.yaml"), "--json").json()
    assert done["state"] == "redirected" and set(done["changes"]) == {
        "sponsor", "stakeholders", "audience", "items.risk-notes.owner", "redirect_owner"}
    doc = cli("show", rid, "--json").json()
    assert doc["plan_approved_by"] == NEW_SPONSOR and doc["intake"]["sponsor"]["role"] == "VP Customer Success"
    assert doc["intake"]["audience"] == {"description": "Account managers, all regions", "size": 34, "contact": None}
    assert doc["redirect_record"]["owner"]["email"] == "jonas.berg@northwind.example"
    assert doc["plan"]["items"][0]["owner"]["email"] == "jonas.berg@northwind.example"


def test_amend_refusals_name_the_field_or_the_missing_reason_and_write_nothing(cli: Cli, tmp_path: Path) -> None:
    rid = _diagnosed_with_a_draft(cli)
    before = cli.snapshot(rid)
    bad = cli("amend", rid, "--reason", "x", "--sponsor-name", "Sofia", "--sponsor-email", "sofia lind", code=2)
    assert "sponsor.email" in bad.err and "nothing was written." in bad.err
    owner = tmp_path / "owner.yaml"
    owner.write_text("reason: Jonas took over\nitems:\n  risk-notes:\n    owner: {name: Jonas, email: jonas@}\n")
    assert "items.risk-notes.owner.email" in cli("amend", rid, "-f", owner, code=2).err
    assert "a reason to amend" in cli("amend", rid, "--title", "A better title", code=3).err
    assert "a reason to amend" in cli("amend", rid, "--reason", "  ", "--title", "A better title", code=3).err
    assert "nothing to amend" in cli("amend", rid, "--reason", "x", code=2).err
    assert cli.snapshot(rid) == before

    cli("decline", rid, "-f", ex("decline.yaml"))
    closed = cli.snapshot(rid)
    refused = cli("amend", rid, "--reason", "x", "--title", "A better title", code=3)
    assert "cannot amend a declined request; missing:" in refused.err and "an open request" in refused.err
    assert cli.snapshot(rid) == closed


def test_reopen_a_declined_request_and_its_refusals(cli: Cli) -> None:
    rid = int(cli("submit", "-f", ex("intake.yaml"), "-q").out.strip())
    assert "refused: cannot reopen a received request" in cli("reopen", rid, "--reason", "x", code=3).err
    cli("decline", rid, "-f", ex("decline.yaml"))
    before = cli.snapshot(rid)
    assert "a reason to reopen" in cli("reopen", rid, code=3).err
    assert "a reason to reopen" in cli("reopen", rid, "--reason", "", code=3).err
    refused = cli("diagnose", rid, "-f", ex("diagnosis.yaml"), code=3)
    assert "only reopen (the request is closed" in refused.err
    assert cli.snapshot(rid) == before

    out = cli("reopen", rid, "-f", ex("reopen.yaml")).out
    assert f"request {rid}: re-opened (state received, version 3)" in out
    history = cli("history", rid, "--json").json()
    assert [h["type"] for h in history[-2:]] == ["declined", "reopened"]
    assert (history[-1]["from_state"], history[-1]["to_state"]) == ("declined", "received")
    assert "re-opened: Legal's annual module" in cli("history", rid).out
    cli("diagnose", rid, "-f", ex("diagnosis.yaml"))  # the partner process starts again
    assert "reopen" in cli("reopen", "--help").out and "stay closed" in cli("reopen", "--help").out
