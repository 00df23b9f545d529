"""``ldflow companion add|done|drop``, run as a user runs them (subprocesses, a temp SQLite home, the
example files): the pieces in ``show`` and ``history``, the owner's mail and one reminder written by
``ldflow run`` as .eml files, the export's column, and bad input (exit 2 naming the field, exit 3
listing what is missing, 4 for an unknown piece) that writes nothing."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from tests.e2e.test_cli import EXAMPLES, Cli


def ex(name: str) -> str:
    return str(EXAMPLES / name)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(tmp_path_factory.mktemp("ldflow-mix"))


def _redirected(cli: Cli) -> int:
    rid = int(cli("submit", "-f", ex("intake-crm.json"), "-q").out.strip())
    cli("diagnose", rid, "-f", ex("diagnosis-crm.yaml"))
    cli("plan", "draft", rid, "-f", ex("plan-crm.yaml"))
    cli("plan", "approve", rid, "-f", ex("approval.yaml"), "--actor", "dana.reyes@northwind.example")
    cli("redirect", rid, "-f", ex("redirect.yaml"))
    return rid


def _eml(cli: Cli, template: str) -> list[object]:
    return [message_from_bytes(p.read_bytes(), policy=default_policy)
            for p in sorted((cli.home / "outbox").glob(f"*_{template}_*.eml"))]


def test_a_mix_from_the_example_and_flags_told_reminded_shown_and_exported(cli: Cli) -> None:
    cli("clock", "set", "2027-03-01T09:00Z")
    rid = _redirected(cli)
    out = cli("companion", "add", rid, "-f", ex("companion.yaml")).out
    assert (f"request {rid}: companion piece risk-note-guide added: a one-page guide to writing a useful risk note, "
            "Marco Bianchi, due 2027-03-15 (state redirected") in out
    added = cli("companion", "add", rid, "--kind", "design", "--what", "a 30-minute practice", "--owner-name",
                "Lena Fischer", "--owner-email", "lena.fischer@northwind.example", "--due", "2027-04-30",
                "--json").json()
    assert added["piece"] == "c2" and added["state"] == "redirected"
    shown = cli("show", rid).out
    assert "Companion pieces (the solution mix)" in shown and "a 30-minute practice" in shown
    history = cli("history", rid).out
    assert "companion piece c2: a 30-minute practice (design), owner Lena Fischer" in history

    cli("run")  # the owners are told
    [told] = [m for m in _eml(cli, "companion_assigned") if "risk note" in str(m["Subject"])]  # type: ignore[index]
    assert [a.addr_spec for a in told["To"].addresses] == ["marco.bianchi@northwind.example"]  # type: ignore[index]
    assert told["Cc"] is None  # type: ignore[index]
    cli("clock", "set", "2027-03-12T09:00Z")
    cli("run")
    cli("run")  # a second pass reminds nobody again
    reminders = _eml(cli, "companion_reminder")
    assert [str(m["Subject"]) for m in reminders] == [  # type: ignore[index]
        f"[ldflow #{rid}] Reminder: a one-page guide to writing a useful risk note, due 15 Mar 2027"]
    assert "owner of companion piece risk-note-guide reminded (due 2027-03-15)" in cli("history", rid).out

    # a piece's owner is amended: the history says it, the new owner is told what they own and by when
    out = cli("amend", rid, "--reason", "Lena moved teams", "--companion", "c2", "--companion-owner-name",
              "Jonas Berg", "--companion-owner-email", "jonas.berg@northwind.example").out
    assert f"request {rid}: amended companions.c2.owner" in out
    assert ("companion piece c2 owner: Lena Fischer <lena.fischer@northwind.example> → Jonas Berg "
            "<jonas.berg@northwind.example> (because: Lena moved teams)") in cli("history", rid).out
    cli("run")
    [retold] = [m for m in _eml(cli, "companion_assigned") if "practice" in str(m["Subject"])  # type: ignore[index]
                and "jonas" in str(m["To"])]  # type: ignore[index]
    assert [a.addr_spec for a in retold["To"].addresses] == ["jonas.berg@northwind.example"]  # type: ignore[index]
    cli("companion", "done", rid, "risk-note-guide", "--note", "shared with the renewal team")
    closed = cli.snapshot(rid)
    refused = cli("amend", rid, "--reason", "x", "--companion", "risk-note-guide", "--companion-owner-name", "Jo",
                  "--companion-owner-email", "jo@northwind.example", code=2)
    assert "companions.risk-note-guide.owner: the piece is done" in refused.err
    assert "give the companion piece's id" in cli("amend", rid, "--reason", "x", "--companion-owner-name", "Jo",
                                                  code=2).err
    assert cli.snapshot(rid) == closed
    cli("companion", "drop", rid, "c2", "--reason", "not needed")
    doc = cli("show", rid, "--json").json()
    assert [(c["id"], c["status"]) for c in doc["companions"]] == [("risk-note-guide", "done"), ("c2", "dropped")]
    csv_out = cli("export", rid, "--format", "csv").out
    assert "risk-note-guide job_aid: a one-page guide to writing a useful risk note" in csv_out


def test_companion_bad_input_and_refusals_write_nothing(cli: Cli) -> None:
    rid = _redirected(cli)
    before = cli.snapshot(rid)
    bad = cli("companion", "add", rid, "--kind", "webinar", "--what", "x", "--owner-name", "Lena", "--owner-email",
              "lena", "--due", "2099-01-01", code=2)
    assert "kind:" in bad.err and "owner.email:" in bad.err and "nothing was written." in bad.err
    assert "due:" in cli("companion", "add", rid, "-f", ex("companion.yaml"), "--due", "2001-01-01", code=2).err
    assert "owner:" in cli("companion", "add", rid, "--kind", "job_aid", "--what", "x", "--due", "2099-01-01",
                           code=2).err
    assert "not found: companion piece 'c1'" in cli("companion", "done", rid, "c1", code=4).err
    assert cli.snapshot(rid) == before
    cli("companion", "add", rid, "-f", ex("companion.yaml"), "--due", "2099-01-01")
    added = cli.snapshot(rid)
    refused = cli("companion", "drop", rid, "risk-note-guide", code=3)
    assert "a reason to drop the piece" in refused.err and "nothing was written." in refused.err
    assert cli.snapshot(rid) == added
    cli("cancel", rid, "-f", ex("cancel.yaml"))
    closed = cli.snapshot(rid)
    assert cli("show", rid, "--json").json()["companions"][0]["status"] == "dropped"
    refused = cli("companion", "add", rid, "-f", ex("companion.yaml"), "--due", "2099-01-01", code=3)
    assert "cannot add a companion piece to a cancelled request" in refused.err
    assert cli.snapshot(rid) == closed
