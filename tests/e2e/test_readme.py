"""The README's walk-through, run as written: every command of its ``sh`` blocks, in order, in one shell
(so ``ID=$(…)`` carries over), from the repository root, with a scratch ``LDFLOW_HOME``.

The marker: a command meant to fail ends its line with ``# exit N``; every other command must exit 0.
A command followed by a ``# refused:`` output line must be marked ``# exit 3``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent
_EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")


@dataclass(frozen=True)
class Command:
    line: int  # in README.md, from 1
    text: str
    expected: int
    refusal_shown: bool  # the next line is a "# refused: …" output comment


def walk_through(readme: str) -> list[Command]:
    """The commands of the ``sh`` blocks of the "Walk-through" section (up to the next ``## `` heading)."""
    lines = readme.splitlines()
    start = lines.index("## Walk-through")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    commands: list[Command] = []
    in_block = False
    for i in range(start, end):
        text = lines[i].strip()
        if text.startswith("```"):
            in_block = text == "```sh" if not in_block else False
            continue
        if not in_block or not text or text.startswith("#"):
            continue
        marker = _EXIT.search(text)
        following = lines[i + 1].strip() if i + 1 < end else ""
        commands.append(Command(i + 1, text, int(marker.group(1)) if marker else 0,
                                following.startswith("# refused:")))
    return commands


def _script(commands: list[Command]) -> str:
    """One bash script: each command, then a check of its exit code naming the README line."""
    out = ["set -u", f"cd {shlex.quote(str(ROOT))}"]
    for c in commands:
        out.append(c.text)
        out.append(f'__rc=$?; if [ "$__rc" -ne {c.expected} ]; then '
                   f"echo \"README.md:{c.line}: exit $__rc, expected {c.expected}: \"{shlex.quote(c.text)} >&2; "
                   "exit 97; fi")
    out.append('echo "__LDFLOW_HOME=$LDFLOW_HOME"')
    return "\n".join(out) + "\n"


def test_the_walk_through_has_commands_and_marks_its_refusals() -> None:
    commands = walk_through(README.read_text(encoding="utf-8"))
    assert len(commands) > 20 and commands[0].text.startswith("export PATH=")
    # design, early record, measure, acknowledge refused; a companion piece of an unknown kind is invalid input
    assert [c.expected for c in commands if c.expected] == [3, 3, 3, 3, 2]
    for c in commands:
        assert c.expected == 3 or not c.refusal_shown, f"README.md:{c.line}: a refusal shown, no '# exit 3': {c.text}"


@pytest.mark.slow
def test_the_walk_through_runs_as_written(tmp_path: Path) -> None:
    commands = walk_through(README.read_text(encoding="utf-8"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LDFLOW_", "PREFECT_"))}
    env.update({"PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", "TMPDIR": str(tmp_path),
                "PREFECT_HOME": str(tmp_path / "prefect"), "COLUMNS": "80"})
    run = subprocess.run(["bash", "-c", _script(commands)], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stdout + run.stderr
    home = Path(run.stdout.rsplit("__LDFLOW_HOME=", 1)[1].strip())
    assert home.parent == tmp_path and (home / "requests.csv").is_file()  # the scratch home, not ./.ldflow

    # The command `ldflow demo` suggests at its end runs as printed, from the repository root, with the
    # venv's bin not on PATH (as after `make demo`).
    from flows.demo import try_command

    bare = {**env, "PATH": os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if Path(p) != VENV_BIN)}
    cwd = os.getcwd()
    try:
        os.chdir(ROOT)
        suggested = try_command(home, "report", "1")
    finally:
        os.chdir(cwd)
    report = subprocess.run(["bash", "-c", suggested], capture_output=True, text=True, env=bare, cwd=ROOT,
                            timeout=60)
    assert report.returncode == 0, (suggested, report.stderr)
    assert "Results and thanks" in report.stdout or "Hello" in report.stdout
