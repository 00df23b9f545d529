"""Two ``followups`` runs in two processes at once, one killed mid-claim, and a relay killed between
claiming and sending.

Both on SQLite and on PostgreSQL (``db_url``). The processes run the same code
the Prefect tasks run (``flows.steps.fire_followups`` / ``send_outbox``'s relay).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from connectors.db.engine import make_engine
from connectors.db.store import SqlStore
from flows.clock import FixedClock
from flows.service import Service
from tests.builders import T0, drive_to

ROOT = Path(__file__).resolve().parents[2]
END = datetime(2026, 4, 20, 9, 0, tzinfo=UTC)  # delivery_data()'s end date at 09:00 UTC

FOLLOWUPS = textwrap.dedent("""
    import json, sys, time
    from datetime import datetime
    from flows import bootstrap
    from flows.clock import FixedClock
    from flows.settings import Settings
    from flows.steps import fire_followups

    url, now, start_at, home = sys.argv[1], datetime.fromisoformat(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    rt = bootstrap.build(Settings(home=home, database_url=url), clock=FixedClock(now), migrate=False)
    rt.engine.connect().close()
    while time.time() < start_at:  # both processes start together
        time.sleep(0.001)
    summary = fire_followups(rt, batch=3, lateness_days=60)
    print(json.dumps(summary.as_dict()))
""")


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(tmp_path)])
    env["PREFECT_HOME"] = str(tmp_path / ".prefect")
    env["PREFECT_LOGGING_LEVEL"] = "ERROR"
    env.pop("PREFECT_API_URL", None)
    return env


def _scalar(engine: Any, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def test_two_followups_processes_at_once_fire_each_checkpoint_once(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    service = Service(SqlStore(engine), FixedClock(T0))
    ids = [drive_to(service, "delivered").id for _ in range(24)]
    now = END + timedelta(days=31)  # m2:P1D and m1:P30D due for every request: 48 checkpoints
    outbox_before = _scalar(engine, "SELECT count(*) FROM outbox")
    script = tmp_path / "followups_once.py"
    script.write_text(FOLLOWUPS)
    start_at = time.time() + 4
    procs = [subprocess.Popen([sys.executable, str(script), db_url, now.isoformat(), str(start_at), str(tmp_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
             for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    print("followups runs:", [r["counts"] for r in results])
    sent = sum(r["counts"]["sent"] for r in results)
    assert sent == 48, results
    assert all(r["errors_total"] == 0 for r in results)
    assert _scalar(engine, "SELECT count(*) FROM audit_events WHERE type = 'survey_sent'") == 48
    assert _scalar(engine, "SELECT count(DISTINCT payload) FROM audit_events WHERE type = 'survey_sent'") == 48
    assert _scalar(engine, "SELECT count(*) FROM outbox") == outbox_before + 48 * 2  # survey + owner to-do
    with engine.connect() as conn:
        statuses = dict(conn.execute(text("SELECT status, count(*) FROM checkpoints GROUP BY status")).all())
    assert statuses == {"sent": 48, "scheduled": 24}
    for request_id in ids:  # the documents agree with the timers
        request = service.show(request_id)
        assert sorted(c.status.value for c in request.checkpoints) == ["scheduled", "sent", "sent"]
    assert service.verify().ok
    engine.dispose()


BLOCKING_FOLLOWUPS = textwrap.dedent("""
    import json, sys, time
    from datetime import datetime
    from flows import bootstrap
    from flows.clock import FixedClock
    from flows.settings import Settings
    from flows.steps import fire_followups
    from states.request import TrainingRequest

    url, now, home = sys.argv[1], datetime.fromisoformat(sys.argv[2]), sys.argv[3]
    block_at, flag = int(sys.argv[4]), sys.argv[5]
    real, calls = TrainingRequest.send_checkpoints, [0]

    def send_checkpoints(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == block_at:  # inside the claim's transaction: earlier requests applied, not committed
            open(flag, "w").close()
            time.sleep(3600)  # killed here
        return real(self, *args, **kwargs)

    TrainingRequest.send_checkpoints = send_checkpoints
    rt = bootstrap.build(Settings(home=home, database_url=url), clock=FixedClock(now), migrate=False)
    started = time.monotonic()
    summary = fire_followups(rt, batch=500, lateness_days=60)
    print(json.dumps({**summary.as_dict(), "seconds": time.monotonic() - started}))
""")


def test_a_followups_run_killed_mid_batch_fires_nothing_and_a_concurrent_run_skips_its_claim(
        pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL: the killed run's claimed requests (locked, changed, not committed) are skipped by a run
    beside it — which does not wait for them — and fired once by the next run after the kill."""
    engine = make_engine(pg_url)
    service = Service(SqlStore(engine), FixedClock(T0))
    for _ in range(24):
        drive_to(service, "delivered")
    now = END + timedelta(days=31)  # 48 checkpoints due
    script, flag = tmp_path / "followups_blocking.py", tmp_path / "blocked"
    script.write_text(BLOCKING_FOLLOWUPS)

    def run(block_at: int) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, str(script), pg_url, now.isoformat(), str(tmp_path), str(block_at),
                                 str(flag)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=_env(tmp_path))

    def finished(proc: subprocess.Popen[str]) -> dict[str, Any]:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        return dict(json.loads(out.strip().splitlines()[-1]))

    killed = run(block_at=5)  # claims the first 20 requests, applies four, hangs on the fifth
    deadline = time.time() + 90
    while not flag.exists():
        assert killed.poll() is None, killed.communicate()
        assert time.time() < deadline, "the first run never reached its fifth request"
        time.sleep(0.05)
    beside = finished(run(block_at=0))
    assert beside["counts"]["sent"] == 8  # the four requests outside the held claim, two checkpoints each
    assert beside["seconds"] < 60  # it skipped the locked rows instead of waiting on them
    assert _scalar(engine, "SELECT count(*) FROM audit_events WHERE type = 'survey_sent'") == 8
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)

    after = finished(run(block_at=0))
    assert after["counts"]["sent"] == 40
    assert _scalar(engine, "SELECT count(*) FROM audit_events WHERE type = 'survey_sent'") == 48
    assert _scalar(engine, "SELECT count(DISTINCT payload) FROM audit_events WHERE type = 'survey_sent'") == 48
    assert _scalar(engine, "SELECT count(*) FROM checkpoints WHERE status = 'sent'") == 48
    assert finished(run(block_at=0))["counts"]["sent"] == 0
    assert service.verify().ok
    engine.dispose()


RELAY = textwrap.dedent("""
    import os, sys, time
    from datetime import datetime, timedelta
    from functools import partial
    from connectors.db.engine import make_engine
    from connectors.email.render import render
    from connectors.email.smtp import FileSender
    from flows.relay import relay_outbox

    class BlockingSender(FileSender):
        \"\"\"Writes messages as files and logs each send; blocks for good before the BLOCK_AT-th one.\"\"\"

        def __init__(self, folder, log, block_at, idempotent):
            super().__init__(folder)
            self.log, self.block_at, self.count, self.idempotent = log, block_at, 0, idempotent

        def send(self, message, recipients=None):
            self.count += 1
            if self.count == self.block_at:
                open(self.log + ".blocked", "w").close()
                time.sleep(3600)  # killed here: claimed, not sent
            result = super().send(message, recipients)
            with open(self.log, "a") as f:
                f.write(str(message["Message-ID"]) + "\\n")
                f.flush()
                os.fsync(f.fileno())
            return result

    url, now, lease = sys.argv[1], datetime.fromisoformat(sys.argv[2]), int(sys.argv[3])
    folder, log, block_at, idempotent = sys.argv[4], sys.argv[5], int(sys.argv[6]), sys.argv[7] == "1"
    engine = make_engine(url)
    sender = BlockingSender(folder, log, block_at, idempotent)
    summary = relay_outbox(engine, sender, partial(render, mail_from="ldflow@example.org", domain="example.org"),
                           now, f"relay-{os.getpid()}", batch=100, lease=timedelta(seconds=lease))
    print(summary)
""")


@pytest.mark.parametrize("idempotent", [True, False], ids=["file-sender", "smtp-like"])
def test_a_relay_killed_between_claim_and_send_loses_nothing_and_sends_nothing_twice(
        db_url: str, tmp_path: Path, idempotent: bool) -> None:
    engine = make_engine(db_url)
    service = Service(SqlStore(engine), FixedClock(T0))
    for _ in range(12):
        service.submit(drive_intake(), "ops@example.org")  # one acknowledgement e-mail each
    assert _scalar(engine, "SELECT count(*) FROM outbox WHERE status = 'pending'") == 12
    script = tmp_path / "relay_once.py"
    script.write_text(RELAY)
    folder, log = tmp_path / "outbox", tmp_path / "sent.log"
    now = datetime.now(UTC)
    lease = 3

    def relay(at: datetime, block_at: int) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, str(script), db_url, at.isoformat(), str(lease), str(folder),
                                 str(log), str(block_at), "1" if idempotent else "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path))

    first = relay(now, block_at=5)  # sends four, then hangs holding the other eight claimed
    blocked = Path(str(log) + ".blocked")
    deadline = time.time() + 60
    while not blocked.exists():
        assert first.poll() is None, first.communicate()
        assert time.time() < deadline, "the first relay never reached its fifth message"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    sent_before = log.read_text().split()
    assert len(sent_before) == 4
    with engine.connect() as conn:
        status = dict(conn.execute(text("SELECT status, count(*) FROM outbox GROUP BY status")).all())
    assert status.get("sent") == 4 and sum(status.values()) == 12

    still_leased = relay(now + timedelta(seconds=1), block_at=0)  # within the lease: takes nothing
    out, err = still_leased.communicate(timeout=120)
    assert still_leased.returncode == 0, err
    assert "claimed=0" in out and log.read_text().split() == sent_before

    after_lease = relay(now + timedelta(seconds=lease + 1), block_at=0)
    out, err = after_lease.communicate(timeout=120)
    assert after_lease.returncode == 0, err
    sent = log.read_text().split()
    assert sent[:4] == sent_before  # the confirmed four were not sent again
    with engine.connect() as conn:
        status = dict(conn.execute(text("SELECT status, count(*) FROM outbox GROUP BY status")).all())
    if idempotent:
        # the message in hand when it died was never handed over: sent now, like the other seven
        assert len(sent) == len(set(sent)) == 12
        assert status == {"sent": 12}
        assert len(list(folder.glob("*.eml"))) == 12
    else:
        # SMTP-like: the fifth was mid-transmission, its outcome unknown: parked, never resent blindly
        assert len(sent) == len(set(sent)) == 11
        assert status == {"sent": 11, "unknown": 1}
    engine.dispose()


def drive_intake() -> dict[str, Any]:
    from tests.builders import intake_data

    return intake_data()
