"""The survey benchmark runs at a small scale (a smoke test, not a timing): bench/surveys.py with 2 requests of
5 learners sends 10 survey mails through followups and dispatch and closes the windows, and its aggregation
mode aggregates the answers; both end with their JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "surveys.py"), *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_the_survey_bench_sends_every_mail_and_closes_every_window() -> None:
    result = _run("--n", "2", "--learners", "5")
    assert (result["bench"], result["mails"], result["answers"]) == ("surveys", 10, 10)


def test_the_aggregation_bench_aggregates_every_answer() -> None:
    result = _run("--aggregate-only", "--n", "3", "--learners", "50")
    assert (result["bench"], result["answers"]) == ("surveys-aggregate", 150)
