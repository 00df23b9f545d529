"""Prefect never slows a write, and no Prefect process outlives ``ldflow``, as a user sees it.

* A write costs the same with a Prefect API that refuses connections, or one that accepts and
  never answers, as with none: its events go to the event outbox in the write's transaction.
* ``ldflow run`` without ``PREFECT_API_URL`` runs in its own process: killed by SIGTERM, SIGINT or
  SIGKILL mid-pass it leaves no process behind.
* ``ldflow serve`` SIGKILLed: the Prefect server it started goes too (PR_SET_PDEATHSIG); stopped by
  SIGTERM or SIGINT while a served flow run is under way, it leaves no process either.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cli_support import EXAMPLES, Ldflow, Process, descendants, kill_if_alive, still_running, wait_for
from tests.sockets import HungApi, refusing_url
from tests.sockets import hung_api as hung_api_socket


@pytest.fixture
def hung_api() -> Iterator[HungApi]:
    with hung_api_socket() as api:
        yield api


def _write_seconds(cli: Ldflow, api: str | None) -> float:
    """Seconds a ``submit`` and a ``note`` take with ``PREFECT_API_URL=api`` (None: unset)."""
    if api is None:
        cli.env.pop("PREFECT_API_URL", None)
    else:
        cli.env["PREFECT_API_URL"] = api
    started = time.monotonic()
    rid = cli("submit", "-f", str(EXAMPLES / "intake.yaml"), "-q").out.strip()
    cli("note", rid, "called the sponsor")
    return time.monotonic() - started


def _pending_events(home: Path) -> int:
    with sqlite3.connect(home / "ldflow.db") as db:
        return int(db.execute("SELECT count(*) FROM event_outbox WHERE published_at IS NULL").fetchone()[0])


@pytest.mark.timeout(300)
def test_a_write_costs_the_same_with_prefect_down_or_hung_as_with_none(tmp_path: Path, hung_api: HungApi) -> None:
    cli = Ldflow(tmp_path / "home", tmp_path / "prefect-home")
    cli("submit", "-f", str(EXAMPLES / "intake.yaml"), "-q")  # creates the database
    took: dict[str, list[float]] = {"none": [], "refused": [], "hung": []}
    for _ in range(3):  # interleaved, so a busy machine slows each case alike
        took["none"].append(_write_seconds(cli, None))
        took["refused"].append(_write_seconds(cli, refusing_url()))
        took["hung"].append(_write_seconds(cli, hung_api.url))
    none, refused, hung = (statistics.median(took[k]) for k in ("none", "refused", "hung"))
    assert refused < none + 1.0 and hung < none + 1.0, took
    assert hung_api.held == []  # no write even connected to the API
    # every write's events wait in the outbox: 1 + 9 submits (submitted + wake-up each), 9 notes
    assert _pending_events(cli.home) == 2 * 10 + 9


def _session(pid: int) -> list[int]:
    """Pids of running processes in the session ``pid`` leads (what a killed ``ldflow`` left)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] not in ("Z", "X") and int(fields[3]) == pid:
            found.append(int(entry.name))
    return found


@pytest.mark.timeout(300)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_ldflow_run_killed_mid_pass_leaves_no_process(tmp_path: Path, signum: signal.Signals) -> None:
    cli = Ldflow(tmp_path / "home", tmp_path / "prefect-home")
    cli("clock", "set", "2026-11-02T09:00Z")
    for i in range(150):
        cli.drop("intake.yaml", f"intake-{i:03}.yaml")
    running = cli.spawn("run")
    try:
        processed = cli.home / "dropbox" / "processed"
        wait_for("the pass to be under way", lambda: processed.is_dir() and any(processed.iterdir()),
                 timeout=120, spawned=running, every=0.05)
        os.kill(running.proc.pid, signum)
        running.proc.wait(timeout=60)
        deadline = time.monotonic() + 10
        while _session(running.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _session(running.proc.pid) == [], "processes of the killed ldflow run still run"
        assert len(list(processed.iterdir())) < 150  # it was killed mid-pass
    finally:
        for pid in _session(running.proc.pid):
            os.kill(pid, signal.SIGKILL)
        running.stop()
    again = cli("run")  # the next pass takes the rest in, nothing twice
    assert "intake" in again.out


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkill_of_serve_takes_its_prefect_server_with_it(tmp_path: Path) -> None:
    cli = Ldflow(tmp_path / "home", tmp_path / "prefect-home")
    serving = cli.spawn("serve", "--interval", "60", "--dispatch-interval", "60")
    server: Process | None = None
    try:
        [server] = wait_for("serve to start a Prefect server",
                            lambda: [p for p in descendants(serving.proc.pid) if "prefect server start" in p.command],
                            timeout=120, spawned=serving, every=0.1)
        time.sleep(2)
        os.kill(serving.proc.pid, signal.SIGKILL)  # serve alone, not its process group
        serving.proc.wait(timeout=30)
        left = still_running([server], within=30)
    finally:
        serving.stop()
        if server is not None:
            kill_if_alive(server)
    assert left == [], f"the Prefect server serve started outlived serve's SIGKILL: {left}"


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_serve_stopped_mid_run_by_sigterm_or_sigint_leaves_no_process(tmp_path: Path, signum: signal.Signals) -> None:
    cli = Ldflow(tmp_path / "home", tmp_path / "prefect-home")
    serving = cli.spawn("serve", "--interval", "10", "--dispatch-interval", "10")
    watched: list[Process] = []
    try:
        # the local server and a served flow run (`python -m prefect.engine`) under way
        below = wait_for("serve to run a flow run", lambda: (lambda found: found if any(
            "prefect server start" in p.command for p in found) and any(
            "prefect.engine" in p.command for p in found) else None)(descendants(serving.proc.pid)),
            timeout=180, spawned=serving, every=0.1)
        watched = list(below)
        os.kill(serving.proc.pid, signum)  # serve alone, as `kill PID` or a supervisor does
        serving.proc.wait(timeout=90)
        watched += [p for p in descendants(serving.proc.pid) if p not in watched]
        left = still_running(watched, within=30)
    finally:
        serving.stop()
        for process in watched:
            kill_if_alive(process)
    assert left == [], f"processes of serve outlived its {signum.name}: {left}"
