"""What a person reads in the terminal: ``list``, ``show`` and ``history`` at 80 columns, the wording of
refusals and conflicts, and the ``--json`` of every read command the README promises."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flows.clock import FileClock
from tests.e2e.cli_support import EXAMPLES, Ldflow

SPONSOR = "dana.reyes@northwind.example"
LONG_TITLE = "Discovery conversations for the enterprise account executives before the sales kickoff"


def ex(name: str) -> str:
    return str(EXAMPLES / name)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Ldflow:
    cli = Ldflow(tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("prefect"))
    FileClock(cli.home / "clock.json").set(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    cli.env["COLUMNS"] = "80"
    return cli


@pytest.fixture(scope="module")
def delivered(cli: Ldflow) -> int:
    """A request delivered with one practice session (the README's walk-through up to step 5)."""
    rid = int(cli("submit", "-f", ex("intake.yaml"), "--title", LONG_TITLE, "-q").out)
    cli("diagnose", rid, "-f", ex("diagnosis.yaml"))
    cli("plan", "draft", rid, "-f", ex("plan.yaml"))
    cli("plan", "approve", rid, "--by", SPONSOR, "--actor", SPONSOR)
    cli("design", rid, "-f", ex("design.yaml"))
    cli("session", rid, "-f", ex("session.yaml"))
    cli("deliver", rid, "-f", ex("delivery.yaml"))
    return rid


def test_list_at_80_columns_shows_the_id_and_the_whole_title(cli: Ldflow, delivered: int) -> None:
    lines = cli("list").out.splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines)
    assert lines[1].split()[:3] == ["id", "title", "state"]
    start, end = lines[1].index("title"), lines[1].index("state")
    first = next(i for i, line in enumerate(lines) if line[:start].strip() == str(delivered))
    assert "delivered" in lines[first]
    assert " ".join(line[start:end].strip() for line in lines[first:first + 3]).strip() == LONG_TITLE


def test_show_at_80_columns_lists_the_sessions(cli: Ldflow, delivered: int) -> None:
    out = cli("show", delivered).out
    assert all(len(line.rstrip()) <= 80 for line in out.splitlines())
    words = " ".join(out.replace("│", " ").split())
    assert "Sessions (times in UTC)" in words
    assert ("practice-1 scheduled 2026-02-16 08:00Z – 11:00Z Discovery practice lab "
            "(lost deals, role play) at Training room 3 / Teams link in the invite attendees "
            "sales-enterprise@northwind.example") in words


def test_history_at_80_columns_tells_every_event_in_words(cli: Ldflow, delivered: int) -> None:
    out = cli("history", delivered).out
    assert all(len(line.rstrip()) <= 80 for line in out.splitlines())
    assert '{"' not in out  # no event is shown as its raw payload
    assert "practice-1 'Discovery practice lab (lost deals, role play)', 2026-02-16 08:00Z – 11:00Z" in \
        " ".join(out.split())
    types = [r["type"] for r in cli("history", delivered, "--json").json()]
    assert "session_scheduled" in types and "delivered" in types


def test_counts_read_as_words(cli: Ldflow, delivered: int) -> None:
    events = len(cli("history", delivered, "--json").json())
    assert cli("audit", "verify").out == f"audit chains ok: {events} events, 1 request, 0 signed checkpoints checked\n"
    FileClock(cli.home / "clock.json").set(datetime(2026, 11, 12, 10, 0, tzinfo=UTC))  # reaction:P1D is due
    out = cli("record", delivered, "-c", "reaction:P1D", "--value", "88", "--if-version", "7").out
    assert "; 3 checkpoints still open" in out


def test_export_json_is_the_json_export_on_stdout(cli: Ldflow, delivered: int) -> None:
    export = cli("export", delivered, "--json")
    assert export.out == cli("export", delivered, "--format", "json").out
    assert [item["request"]["id"] for item in export.json()] == [delivered]
    refused = cli("export", "--json", "--format", "csv", code=2)
    assert "json" in refused.err and "--format csv" in refused.err


@pytest.mark.parametrize("command", [("show",), ("list",), ("history",), ("export",), ("report",), ("plan", "show"),
                                     ("audit", "verify"), ("outbox", "list"), ("inbound", "quarantined")])
def test_every_read_command_the_readme_names_takes_json(cli: Ldflow, command: tuple[str, ...]) -> None:
    assert "--json" in cli(*command, "--help").out


def test_a_vague_phrase_anywhere_in_an_action_is_refused_with_the_alternative(cli: Ldflow) -> None:
    rid = int(cli("submit", "-f", ex("intake.yaml"), "-q").out)
    refused = cli("diagnose", rid, "-f", ex("diagnosis.yaml"), "--action", "Ask three discovery questions",
                  "--action", "demonstrate an understanding of objections", code=2)
    err = " ".join(refused.err.split())
    assert "observable_actions[1]: 'demonstrate an understanding of objections' uses the vague verb " \
           "'demonstrate an understanding'" in err and "explain it in their own words" in err
    assert "nothing was written" in err
    assert cli("show", rid, "--json").json()["state"] == "received"
