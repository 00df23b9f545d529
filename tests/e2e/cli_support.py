"""Helpers for the end-to-end tests: ``ldflow`` run as a user runs it, and the process tree it leaves.

The process functions read ``/proc`` (Linux): a process is identified by its pid *and* its start time,
so a pid the kernel reuses later is never mistaken for the process seen before.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
LDFLOW = Path(sys.executable).with_name("ldflow")  # the console script the venv installs
ACTOR = "tom.okafor@northwind.example"
T = TypeVar("T")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


class Ldflow:
    """Runs ``ldflow`` against one data directory (``LDFLOW_HOME``), with no setting inherited from the
    environment the tests run in (no ``LDFLOW_*``, no ``PREFECT_*``): Prefect keeps its files in
    ``prefect_home`` and, without ``PREFECT_API_URL``, starts its own server as it does for a user."""

    def __init__(self, home: Path, prefect_home: Path, *, simulated_clock: bool = True) -> None:
        assert LDFLOW.is_file(), f"no console script at {LDFLOW}: install the project (make .venv/.installed-stamp)"
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("LDFLOW_", "PREFECT_"))}
        self.env.update({"LDFLOW_HOME": str(home), "LDFLOW_ACTOR": ACTOR, "PREFECT_HOME": str(prefect_home),
                         "COLUMNS": "200"})
        if simulated_clock:
            self.env["LDFLOW_SIMULATED_CLOCK"] = str(home / "clock.json")

    def __call__(self, *args: str | Path | int, code: int | None = 0, timeout: float = 60) -> Result:
        proc = subprocess.run([str(LDFLOW), *map(str, args)], capture_output=True, text=True, env=self.env,
                              cwd=self.home, timeout=timeout)
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        command = " ".join(map(str, args))
        assert "Traceback" not in result.out + result.err, f"ldflow {command}:\n{result.err}"
        if code is not None:
            assert result.code == code, f"ldflow {command} -> {result.code}\n{result.out}\n{result.err}"
        return result

    def spawn(self, *args: str) -> Spawned:
        """Start ``ldflow`` in the background as a terminal starts a foreground job: its own process
        group (Ctrl-C reaches the whole group), SIGINT not ignored, output to files."""
        out, err = self.home / f"{args[0]}.stdout", self.home / f"{args[0]}.stderr"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen([str(LDFLOW), *args], stdout=stdout, stderr=stderr, env=self.env,
                                    cwd=self.home, start_new_session=True,
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        return Spawned(proc, out, err)

    def drop(self, example: str, name: str) -> Path:
        """Put an example intake into the drop folder, as someone saving a file there would."""
        dropbox = self.home / "dropbox"
        dropbox.mkdir(exist_ok=True)
        return Path(shutil.copyfile(EXAMPLES / example, dropbox / name))


@dataclass
class Spawned:
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    @property
    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def ctrl_c(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)

    def stop(self) -> None:
        """End the process group if it still runs (cleanup after a failed test)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)


def wait_for(what: str, probe: Callable[[], T | None], *, timeout: float, spawned: Spawned | None = None,
             every: float = 0.5) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds or as soon as
    ``spawned`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if spawned is not None and spawned.proc.poll() is not None:
            pytest.fail(f"ldflow exited ({spawned.proc.returncode}) while waiting for {what}:\n{spawned.output}")
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting for {what} after {timeout} s" +
                        (f":\n{spawned.output}" if spawned is not None else ""))
        time.sleep(every)


# --- the process tree ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    started: int  # clock ticks after boot (field 22 of /proc/PID/stat)
    command: str


def read_process(pid: int) -> Process | None:
    """The running process ``pid`` (None when gone or a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return Process(pid, int(fields[1]), int(fields[19]), command.strip())


def processes() -> list[Process]:
    found = (read_process(int(entry.name)) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    return [p for p in found if p is not None]


def descendants(pid: int) -> list[Process]:
    """Every running process below ``pid``: children, their children …"""
    table = processes()
    below: list[Process] = []
    parents = {pid}
    while True:
        found = [p for p in table if p.ppid in parents and p not in below]
        if not found:
            return below
        below += found
        parents = {p.pid for p in found}


def alive(process: Process) -> bool:
    now = read_process(process.pid)
    return now is not None and now.started == process.started


def kill_if_alive(process: Process) -> None:
    """Cleanup: end a process a test caused to start (by its pid, after checking it is that process)."""
    if alive(process):
        os.kill(process.pid, signal.SIGKILL)


def still_running(watched: list[Process], *, within: float) -> list[Process]:
    """Those of ``watched`` still running after waiting up to ``within`` seconds for all to end."""
    deadline = time.monotonic() + within
    while any(alive(p) for p in watched) and time.monotonic() < deadline:
        time.sleep(0.2)
    return [p for p in watched if alive(p)]
