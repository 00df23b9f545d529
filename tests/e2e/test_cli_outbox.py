"""``ldflow outbox`` and ``ldflow inbound`` as a user runs them: real subprocesses on a temp SQLite home.

Rows whose outcome is unknown are made the way they happen in production: a relay claims them,
commits ``transmitting`` and dies; the next claim after the lease turns them ``unknown``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.db import outbox as ob
from connectors.db.engine import make_engine, write_transaction
from connectors.db.tables import outbox
from flows.clock import FileClock
from flows.settings import Settings
from tests.builders import T0

ROOT = Path(__file__).resolve().parents[2]
LDFLOW = Path(sys.executable).with_name("ldflow")
ACK1, ACK2 = "1:intake_acknowledgement", "2:intake_acknowledgement"


class Cli:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LDFLOW_")}
        self.env.update({"LDFLOW_HOME": str(home), "LDFLOW_SIMULATED_CLOCK": str(home / "clock.json"),
                         "LDFLOW_ACTOR": "ops@example.org", "COLUMNS": "200"})

    def __call__(self, *args: str | Path, code: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(LDFLOW), *map(str, args)], capture_output=True, text=True, env=self.env,
                              cwd=self.home, timeout=60)
        assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
        assert proc.returncode == code, f"ldflow {' '.join(map(str, args))} -> {proc.returncode}\n{proc.stderr}"
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    FileClock(tmp_path / "clock.json").set(T0)
    return tmp_path


def _rows(home: Path) -> dict[str, tuple[Any, ...]]:
    engine = make_engine(Settings(home=home).url)
    try:
        with engine.connect() as conn:
            return {r.key: tuple(r) for r in conn.execute(select(outbox).order_by(outbox.c.id))}
    finally:
        engine.dispose()


def _relay_dies_while_transmitting(home: Path) -> None:
    """Claim every due row, commit 'transmitting', stop; the next claim finds the lease expired."""
    engine = make_engine(Settings(home=home).url)
    try:
        lease = timedelta(minutes=5)
        rows = ob.claim_batch(engine, "dead-relay", T0, lease)
        assert len(rows) == 2
        with write_transaction(engine) as conn:
            for row in rows:
                assert ob.mark_transmitting(conn, row.id, "dead-relay", f"<{row.id}@example.org>")
        assert ob.claim_batch(engine, "next-relay", T0 + lease + timedelta(seconds=1), lease) == []
    finally:
        engine.dispose()


def test_list_retry_and_mark_sent(home: Path) -> None:
    cli = Cli(home)
    for _ in range(2):
        cli("submit", "-f", ROOT / "examples" / "intake.yaml", "-q")
    assert [(r["key"], r["status"]) for r in cli.json("outbox", "list")] == [(ACK2, "pending"), (ACK1, "pending")]
    _relay_dies_while_transmitting(home)

    rows = {r["key"]: r for r in cli.json("outbox", "list", "--status", "unknown")}
    assert set(rows) == {ACK1, ACK2}
    assert rows[ACK1]["attempts"] == 1 and "outcome unknown" in rows[ACK1]["last_error"]
    table = cli("outbox", "list", "--status", "unknown").stdout
    assert ACK1 in table and "unknown" in table and "intake_acknowledgement" in table
    assert cli.json("outbox", "list", "--status", "sent") == []

    # retry one: back to pending (attempts restart), the other stays parked
    assert cli.json("outbox", "retry", "--key", ACK1) == {"requeued": 1}
    status = {r["key"]: (r["status"], r["attempts"]) for r in cli.json("outbox", "list")}
    assert status == {ACK1: ("pending", 0), ACK2: ("unknown", 1)}

    # the server log shows the other went out: close it without sending
    out = cli("outbox", "mark-sent", ACK2).stdout
    assert "marked sent" in out and "<2@example.org>" in out
    [row] = cli.json("outbox", "list", "--status", "sent")
    assert row["key"] == ACK2 and row["sent_at"] and row["message_id"] == "<2@example.org>"
    assert "marked sent by ops@example.org" in row["last_error"]
    history = cli.json("history", "2")
    assert any(h["type"] == "email_sent" and h["actor"] == "ops@example.org" for h in history), history

    assert cli.json("outbox", "retry", "--all-unknown") == {"requeued": 0}


def test_bad_input_changes_nothing(home: Path) -> None:
    cli = Cli(home)
    for _ in range(2):
        cli("submit", "-f", ROOT / "examples" / "intake.yaml", "-q")
    _relay_dies_while_transmitting(home)
    cli("outbox", "mark-sent", ACK2)
    before = _rows(home)

    calls = [  # (arguments, exit code, what stderr must say); independent, so run side by side
        (("outbox", "retry", "--key", "nope", "--key", ACK1), 4, "'nope'"),
        (("outbox", "mark-sent", "9:nothing"), 4, "not found"),
        (("outbox", "mark-sent", ACK2), 2, "only a row whose outcome is unknown"),
        (("outbox", "retry", "--key", ACK2), 2, "only unknown or failed rows"),
        (("outbox", "retry"), 2, "--all-unknown"),
        (("outbox", "list", "--status", "bogus"), 2, "status"),
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda c: cli(*c[0], code=c[1]).stderr, calls))
    for (args, _, expected), err in zip(calls, results, strict=True):
        assert expected in err, (args, err)
    assert ACK1 not in results[0]  # only the unknown key is named
    assert _rows(home) == before


def test_inbound_quarantined_lists_the_reasons(home: Path) -> None:
    from flows import bootstrap
    from flows.clock import FixedClock
    from flows.steps import take_in

    settings = Settings(home=home)
    rt = bootstrap.build(settings, clock=FixedClock(T0))
    try:
        mail = EmailMessage()
        mail["From"] = "nora@example.org"
        mail["Subject"] = "Training"
        mail["Message-ID"] = "<quoted-only@example.org>"
        mail.set_content("> nothing of her own\n")
        settings.drop_dir.mkdir(parents=True)
        (settings.drop_dir / "q.eml").write_bytes(mail.as_bytes())
        assert take_in(rt).counts["quarantined"] == 1
    finally:
        rt.close()

    cli = Cli(home)
    [item] = cli.json("inbound", "quarantined")
    assert item["message_id"] == "<quoted-only@example.org>" and "body is empty" in item["reason"]
    assert item["received_at"].startswith("2026-03-02")
    table = cli("inbound", "quarantined").stdout
    assert "<quoted-only@example.org>" in table and "1 quarantined" in table
