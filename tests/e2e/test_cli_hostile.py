"""Hostile input and files at the command line: refused with exit 2 naming the field, exports that never
overwrite the database and are private, terminal output that escapes control characters, and a request
stored with an extreme value that stays readable."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows.clock import FileClock
from tests.e2e.cli_support import EXAMPLES, Ldflow

SPONSOR = "sam.sponsor@example.org"
ESC = "\x1b]0;owned\x07\x1b[2J"


def ex(name: str) -> Path:
    return EXAMPLES / name


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Ldflow:
    cli = Ldflow(tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("prefect"))
    FileClock(cli.home / "clock.json").set(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    return cli


@pytest.fixture(scope="module")
def rid(cli: Ldflow) -> int:
    return int(cli("submit", "-f", ex("intake.yaml"), "-q").out)


def test_a_title_that_would_break_a_subject_is_refused_with_the_field_named(cli: Ldflow) -> None:
    result = cli("submit", "-f", ex("intake.yaml"), "--title", "Sales\u2028Bcc: x@example.com", code=2)
    assert "title" in result.err and "nothing was written" in result.err


def test_ids_beyond_64_bits_are_not_found_and_pages_invalid(cli: Ldflow) -> None:
    assert "not found" in cli("show", str(10**20), code=4).err
    assert "offset" in cli("list", "--page", str(10**20), code=2).err


def test_terminal_output_escapes_control_characters_from_stored_text(cli: Ldflow, rid: int) -> None:
    cli("note", rid, f"call me{ESC}", "--actor", f"mallory{ESC}@example.org")
    for command in (("history", rid), ("show", rid), ("list",)):
        out = cli(*command).out
        assert "\x1b" not in out and "\x07" not in out, command
    history = cli("history", rid).out
    assert "\\x1b]0;owned\\x07" in history  # shown, escaped, not acted on


def test_an_export_never_overwrites_the_database_or_a_file_of_the_data_directory(cli: Ldflow, rid: int) -> None:
    db = cli.home / "ldflow.db"
    before = db.read_bytes()
    for command in (("export", "--output", db), ("export-xapi", "-o", db.with_name("ldflow.db-wal")),
                    ("export", "-o", db.with_name("ldflow.db-shm")), ("export-xapi", "-o", cli.home / "clock.json")):
        result = cli(*command, code=2)
        assert "output" in result.err, (command, result.err)
    link = cli.home.parent / f"{cli.home.name}-db-link.json"
    link.unlink(missing_ok=True)
    os.link(db, link)  # a hard link to the database, outside the data directory
    assert cli("export", "--output", link, code=2).code == 2
    assert db.read_bytes()[:100] == before[:100]
    assert cli("show", rid).code == 0


def test_an_export_is_written_whole_and_private_whatever_the_umask(cli: Ldflow, rid: int, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        target = tmp_path / "new" / "requests.csv"
        cli("export", "--format", "csv", "--output", target)
        xapi = tmp_path / "xapi.json"
        cli("export-xapi", "-o", xapi)
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and stat.S_IMODE(xapi.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert target.read_text().startswith("id,") and json.loads(xapi.read_text()) == []
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_a_request_stored_with_an_extreme_value_stays_readable(cli: Ldflow, rid: int) -> None:
    db = next(cli.home.rglob("ldflow.db"))
    with sqlite3.connect(db) as conn:
        [document] = conn.execute("SELECT document FROM requests WHERE id = ?", (rid,)).fetchone()
        data = json.loads(document)
        data["intake"]["business_goal"]["current_value"] = 1e308
        data["roi"] = {"benefits": None, "costs": 1e-320, "currency": "EUR", "benefit_cost_ratio": None,
                       "roi_percent": None}
        conn.execute("UPDATE requests SET document = ? WHERE id = ?", (json.dumps(data), rid))
    assert cli("show", rid).code == 0
    assert cli("show", rid, "--json").json()["roi"] is None
    assert cli("list").code == 0
    assert cli("export").code == 0
    assert cli("export", "--format", "csv").code == 0
