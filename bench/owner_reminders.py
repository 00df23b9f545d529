"""What the owners' reminders cost a follow-up pass: ``Service.remind_owners`` against a full scan.

    python bench/owner_reminders.py --n 2000 --share 0.05 --passes 5

N diagnosed requests on a fresh SQLite database under ``.bench/``; a ``share`` of them has a companion
piece (due far ahead, so no reminder is due: the quiet pass every ``ldflow run`` makes). Measured, in
alternating passes on the same database: (a) the baseline, a scan that loads every request
(``store.iter_requests``) and asks each whether a reminder is due, the way a pass without the store's
prefilter would have to; (b) ``Service.remind_owners``, which asks the store only for the requests whose
document holds ``"reminder":"pending"`` and loads those. Printed: the median pass of each and the ratio
(b)/(a); the last line is JSON.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from bench._common import diagnosis, emit_json, environment, intake, scratch_dir  # noqa: E402

OPS = "ops@example.org"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PIECE = {"kind": "job_aid", "what": "a decision card", "due": "2027-12-31",
         "owner": {"name": "Ana Lopez", "email": "ana.lopez@example.org"}}
BEFORE = timedelta(days=3)


def full_scan(store: Any, now: datetime, before: timedelta) -> int:
    """The baseline: load every request and let the aggregate decide (nothing saved)."""
    from states import followups

    return sum(followups.remind(request, now, before) for request in store.iter_requests())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--share", type=float, default=0.05)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()

    from flows import bootstrap
    from flows.clock import FixedClock
    from flows.settings import Settings

    with scratch_dir("owner-reminders") as home:
        settings = Settings(home=home, database_url=f"sqlite:///{(home / 'ldflow.db').resolve()}",
                            sqlite_synchronous="NORMAL")
        app = bootstrap.build(settings, clock=FixedClock(START))
        every = max(1, round(1 / args.share)) if args.share > 0 else 0
        t0 = time.perf_counter()
        for i in range(args.n):
            r = app.service.submit(intake(i), OPS)
            app.service.diagnose(r.id, diagnosis(), OPS)
            if every and i % every == 0:
                app.service.add_companion(r.id, PIECE, OPS)
        setup = time.perf_counter() - t0
        owing = len(app.store.requests_owing_reminders(0, args.n))

        scan: list[float] = []
        prefiltered: list[float] = []
        for _ in range(args.passes):
            t = time.perf_counter()
            found = full_scan(app.store, START, BEFORE)
            scan.append(time.perf_counter() - t)
            t = time.perf_counter()
            counts = app.service.remind_owners(OPS, BEFORE)
            prefiltered.append(time.perf_counter() - t)
            assert found == counts["reminded"] == 0
        a, b = statistics.median(scan), statistics.median(prefiltered)
        rows: dict[str, Any] = {"requests": args.n, "with_a_piece": owing, "setup_s": round(setup, 1),
                                "full_scan_ms": round(a * 1000, 1), "remind_owners_ms": round(b * 1000, 1),
                                "ratio": round(b / a, 3) if a else None}
        print(f"{args.n:,} requests, {owing:,} with a companion piece (setup {setup:.1f} s)")
        print(f"(a) full scan (load every request)       median {a * 1000:8.1f} ms per pass")
        print(f"(b) Service.remind_owners (prefiltered)  median {b * 1000:8.1f} ms per pass")
        print(f"ratio (b)/(a) = {rows['ratio']}")
        emit_json("owner_reminders", {**rows, "environment": environment()})


if __name__ == "__main__":
    main()
