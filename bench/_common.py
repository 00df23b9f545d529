"""Helpers shared by the benchmarks: sample inputs, a scratch directory, output.

The benchmarks are scripts, not tests: ``python bench/transitions.py``.
They print a Rich table and, last, one machine-readable JSON line.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/x.py` from anywhere
    sys.path.insert(0, str(ROOT))

# Scratch space inside the repository (git-ignored), on the same file system as
# the default data directory `.ldflow/`, so fsync costs are the ones users get.
BENCH_DIR = ROOT / ".bench"

SPONSOR = "sam.sponsor@example.org"


def intake(i: int) -> dict[str, Any]:
    """A realistic intake: a business goal missing only what the diagnosis supplies."""
    return {
        "title": f"Discovery calls for the inside sales team #{i}",
        "requester": {"name": "Rita Requester", "email": "rita.requester@example.org", "role": "Sales manager"},
        "sponsor": {"name": "Sam Sponsor", "email": SPONSOR, "role": "VP Sales"},
        "stakeholders": [{"name": "Hana HR", "email": "hana.hr@example.org", "role": "HR partner"}],
        "requested_solution": "A two-day workshop on consultative selling for all 40 inside sales reps.",
        "business_goal": {"metric": "Qualified pipeline per rep", "unit": "EUR per month",
                          "current_value": 42000, "target_value": 55000},
        "audience": {"description": "Inside sales reps, EMEA", "size": 40},
        "why_now": "Pipeline dropped 15% since the new pricing was introduced.",
        "tried_already": "A one-page pricing FAQ.",
    }


def diagnosis() -> dict[str, Any]:
    """A complete diagnosis: the ``diagnose`` guard lets it through."""
    checks = {
        "expectations_clear": "yes", "tools_adequate": "yes", "process_adequate": "yes",
        "consequences_aligned": "yes", "simpler_way": "no", "could_do_if_life_depended": "no",
        "used_to_do_it": "no", "used_often": "yes", "job_aid_possible": "no",
    }
    return {
        "business_goal": {"target_date": "2027-06-30", "data_source": "CRM pipeline report"},
        "observable_actions": ["ask three discovery questions before quoting a price",
                               "log the customer's stated business problem in the CRM"],
        "cause_checks": {k: {"answer": v, "evidence": "observed in ride-alongs"} for k, v in checks.items()},
        "summary": "A genuine skill gap: reps never learned discovery questioning.",
    }


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory under ``.bench/``, removed afterwards (also on errors and Ctrl-C)."""
    BENCH_DIR.mkdir(exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=BENCH_DIR))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100), linear interpolation between closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99),
            "mean": statistics.fmean(ms), "max": max(ms)}


def environment() -> dict[str, Any]:
    import sqlalchemy

    return {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "sqlalchemy": sqlalchemy.__version__,
            "cpus": os.cpu_count(), "machine": platform.machine()}


def emit_json(name: str, result: dict[str, Any]) -> None:
    """The last line of output: one JSON object for machines."""
    print(json.dumps({"bench": name, **result}, sort_keys=True, separators=(",", ":")))


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn()`` took (perf_counter)."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
