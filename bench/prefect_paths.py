"""Prefect on the CLI's paths (issue 12): what a write and a quiet ``ldflow run`` pass cost.

* **Writes never wait on Prefect.** ``ldflow submit`` with ``PREFECT_API_URL`` pointing at a port
  that refuses connections, and at a loopback socket that accepts and never answers, against the
  baseline of no API — measured in the same run, one call of each in turn.
* **No server start per pass.** A quiet ``ldflow run`` (in-process, no ``PREFECT_API_URL``) against
  the path it replaced: the same ``pipeline`` flow under Prefect with a temporary local server.

    .venv/bin/python bench/prefect_paths.py [--writes 5] [--passes 3]

Ratios are ``case / baseline`` (1.0: the same). A busy machine inflates every figure; the load
average is printed.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from _common import ROOT, emit_json, environment, scratch_dir

LDFLOW = Path(sys.executable).with_name("ldflow")
OLD_RUN = ("from flows import prefect_settings; prefect_settings.apply(); "
           "from flows.pipeline import pipeline; pipeline()")


def _hung_socket() -> tuple[str, threading.Event]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue
        for conn in held:
            conn.close()
        server.close()

    threading.Thread(target=accept, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/api", stop


def _refusing() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/api"


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=ROOT)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=5)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    hung, stop = _hung_socket()
    results: dict[str, dict[str, float]] = {}
    with scratch_dir("prefect-paths-") as tmp:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("LDFLOW_", "PREFECT_"))}
        base.update(LDFLOW_HOME=str(tmp / "home"), PREFECT_HOME=str(tmp / "prefect"),
                    LDFLOW_ACTOR="bench@example.org")
        submit = [str(LDFLOW), "submit", "-f", str(ROOT / "examples" / "intake.yaml"), "-q"]
        _timed(submit, base)  # creates the database
        cases = {"no API": base, "API refuses": {**base, "PREFECT_API_URL": _refusing()},
                 "API hung": {**base, "PREFECT_API_URL": hung}}
        writes: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.writes):
            for name, env in cases.items():
                writes[name].append(_timed(submit, env))
        passes: dict[str, list[float]] = {"ldflow run (in-process)": [], "pipeline flow, temporary server": []}
        _timed([str(LDFLOW), "run"], base)
        for _ in range(args.passes):
            passes["ldflow run (in-process)"].append(_timed([str(LDFLOW), "run"], base))
            passes["pipeline flow, temporary server"].append(_timed([sys.executable, "-c", OLD_RUN], base))
    stop.set()
    print(f"load average: {os.getloadavg()[0]:.1f} (cpus {os.cpu_count()})")
    print(f"{'case':<36}{'median s':>10}{'ratio':>8}")
    for group, baseline in ((writes, "no API"), (passes, "pipeline flow, temporary server")):
        base_median = statistics.median(group[baseline])
        for name, seconds in group.items():
            median = statistics.median(seconds)
            results[name] = {"median_s": round(median, 3), "ratio": round(median / base_median, 3)}
            print(f"{name:<36}{median:>10.2f}{median / base_median:>8.2f}")
    emit_json("prefect_paths", {"results": results, "env": environment(), "load": os.getloadavg()[0]})


if __name__ == "__main__":
    main()
