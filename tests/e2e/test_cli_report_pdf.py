"""``ldflow report ID --pdf -o FILE`` as a user runs it: the PDF written whole and 0600, saying the report's words;
bad combinations and targets refused naming the option (exit 2), no report before measurement (exit 3), and in
each refusal no file written and the database untouched."""

from __future__ import annotations

import hashlib
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e.test_cli import Cli, ex
from tests.e2e.test_cli_evidence import _delivered
from tests.report_support import pdffonts, pdftotext, poppler, to_png


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, int]:
    poppler()
    cli = Cli(tmp_path_factory.mktemp("ldflow-home"))
    cli.clock.set(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    rid = _delivered(cli, ex("plan-evidence.yaml"))
    cli.clock.set(datetime(2027, 2, 10, 9, 0, tzinfo=UTC))
    for key, value in (("incidents:P90D", "7"), ("handling-time:P90D", "395"), ("first-time-fix:P90D", "71"),
                       ("backlog:P30D", "120"), ("backlog:P90D", "90")):
        cli("record", rid, "-c", key, "--value", value)
    cli("measure", rid)
    cli("acknowledge", rid, "-f", ex("acknowledgement.yaml"))
    return cli, rid


def test_report_pdf_writes_the_pdf_whole_and_private(measured: tuple[Cli, int], tmp_path: Path) -> None:
    cli, rid = measured
    target = tmp_path / "out" / "report.pdf"
    result = cli("report", rid, "--pdf", "-o", target)
    assert result.out == "" and f"PDF report written to {target}" in result.err
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_bytes().startswith(b"%PDF-")
    assert not list(target.parent.glob(".*.part"))  # no temporary file left behind
    text = pdftotext(target)
    assert "Repeat incidents per month" in text and "trend line: 16 incidents expected without the programme" in text
    assert "1. What we take away" in text and "(to be completed together)" not in text
    assert all(f["emb"] == "yes" for f in pdffonts(target))
    to_png(target, tmp_path / "pages")
    again = cli("report", rid, "--pdf", "-o", target)  # a file outside the data directory is replaced whole
    assert again.code == 0 and target.read_bytes().startswith(b"%PDF-")
    text_file = tmp_path / "report.txt"
    cli("report", rid, "-o", text_file)
    assert text_file.read_text(encoding="utf-8") == cli("report", rid).out


def test_report_pdf_refusals_name_the_option_and_write_nothing(measured: tuple[Cli, int], tmp_path: Path) -> None:
    cli, rid = measured
    database = cli.home / "ldflow.db"
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    no_output = cli("report", rid, "--pdf", code=2)
    assert "output" in no_output.err and "--pdf needs --output FILE" in no_output.err
    with_json = cli("report", rid, "--pdf", "--json", "-o", tmp_path / "x.pdf", code=2)
    assert "pdf" in with_json.err and "does not go with --json" in with_json.err
    over_db = cli("report", rid, "--pdf", "-o", database, code=2)
    assert "is the database file" in over_db.err
    existing = cli.home / "clock.json"
    in_home = cli("report", rid, "--pdf", "-o", existing, code=2)
    assert "is a file of the data directory" in in_home.err
    assert not (tmp_path / "x.pdf").exists()
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before
    assert existing.read_text().startswith("{")

    fresh = int(cli("submit", "-f", ex("intake.yaml"), "-q").out.strip())
    early = cli("report", fresh, "--pdf", "-o", tmp_path / "early.pdf", code=3)
    assert "reported on once it is measured" in early.err and not (tmp_path / "early.pdf").exists()
    missing = cli("report", 999, "--pdf", "-o", tmp_path / "none.pdf", code=4)
    assert "999" in missing.err and not (tmp_path / "none.pdf").exists()
