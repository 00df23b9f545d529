"""`ldflow demo` end to end: real flows, no network, no Prefect server, no ~/.prefect."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_demo_takes_every_request_to_its_end_and_the_audit_verifies(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LDFLOW_", "PREFECT_"))}
    env["HOME"] = str(tmp_path / "home")  # the demo must not need (or touch) ~/.prefect
    env["COLUMNS"] = "200"
    home = tmp_path / "demo"
    run = subprocess.run([sys.executable, "-m", "flows.cli", "demo", "--home", str(home)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert "audit verify: ok" in out
    assert "acknowledged (3)" in out and "declined (1)" in out
    assert "flagged 1" in out and "reminded 1" in out  # the jump past the 45-day checkpoint; one reminder
    assert "History of request 1" in out and "measured (delivered → measured)" in out
    emails = list((home / "outbox").glob("*.eml"))
    assert f"{len(emails)} e-mails written" in out and len(emails) >= 25
    assert not (tmp_path / "home" / ".prefect").exists()
    assert (home / ".prefect").is_dir()
