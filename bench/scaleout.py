"""Throughput that grows with workers, and what orchestration costs (issue 12 item 6, its Performance
section, and item 5's write → mail latency).

    .venv/bin/python bench/scaleout.py [--mails 500] [--delay-ms 50] [--writes 15] [--batch N]

An operator's installation on this machine (tests/scaleout/cluster.py): a Prefect server on
PostgreSQL, `prefect deploy --all`, `ldflow prefect-setup`, process workers (`ldflow worker
--limit 1`), one ldflow PostgreSQL database, mail to a loopback aiosmtpd sink. The same workload in
every phase: ``--mails`` acknowledgement mails queued in the outbox (one submitted request each),
then sent:

- ``plain``: the dispatch step (``flows.steps.send_outbox``) called in this process, no Prefect;
- ``1 worker``: two ``ldflow-dispatch`` flow runs created at once, one process worker (the second
  run waits for the first, finds nothing left);
- ``2 workers``: the same two runs, two workers: both send at once, their outbox claims disjoint.

Each phase's time runs from the start (the call, or creating the flow runs) until the sink has
every mail. The sink answers each message after ``--delay-ms`` (a real relay answers in tens of ms)
and, in a second round, at once (the work is then CPU-bound: two cores, shared). Ratios:
2 workers / 1 worker (goal ≥ 1.5×) and 1 worker / plain (goal ≤ 1.3×).

Then the latency: one worker, a dispatch run lingering (prefect.yaml: ``linger_seconds: 30``), and
``--writes`` CLI writes (`ldflow submit`, one a second) each queueing an acknowledgement: from its
commit (the outbox row's ``created_at``) to the sink receiving that mail, p50/p95.

Schedules and the dispatch trigger are switched off: the bench starts every run itself. Prints the
load average with the figures; the last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]  # bench/transitions.py is no package
sys.path.insert(0, str(_HERE.parent))

from bench._common import emit_json, environment, intake, percentile  # noqa: E402
from tests.conftest import postgres_admin_url  # noqa: E402
from tests.scaleout.cluster import Cluster, free_port  # noqa: E402


class Sink:
    """aiosmtpd handler: counts messages, keeps each recipient's first arrival; answers after ``delay``."""

    def __init__(self) -> None:
        self.count = 0
        self.first: dict[str, float] = {}
        self.delay = 0.0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        now = time.time()  # wall clock: compared with the outbox row's created_at
        with self.lock:
            self.count += 1
            for rcpt in envelope.rcpt_tos:
                self.first.setdefault(rcpt.lower(), now)
        return "250 OK"

    def wait_for(self, count: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while self.count < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sink has {self.count} of {count} mails after {timeout} s")
            time.sleep(0.02)
        return time.monotonic()


class BenchCluster(Cluster):
    """The scale-out cluster on the real clock (no simulated clock file)."""

    def base_env(self) -> dict[str, str]:
        env = super().base_env()
        env.pop("LDFLOW_SIMULATED_CLOCK", None)
        return env

    def switch_off_triggers(self) -> None:
        for automation in self.automations():
            if any(a.get("deployment_id") for a in automation["actions"]):
                request = urllib.request.Request(f"{self.api}/automations/{automation['id']}",
                                                 data=json.dumps({"enabled": False}).encode(),
                                                 headers={"Content-Type": "application/json"}, method="PATCH")
                urllib.request.urlopen(request, timeout=30).close()

    def settle(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.flow_runs(["RUNNING", "PENDING", "CANCELLING"]) and time.monotonic() < deadline:
            time.sleep(0.5)


def queue(rt: Any, n: int, start: int) -> None:
    """``n`` submitted requests: one acknowledgement each in the outbox (and their events, unpublished)."""
    for i in range(n):
        rt.service.submit(intake(start + i), "bench@example.org")


def _cpu() -> tuple[int, int]:
    """The machine's (busy, total) CPU ticks so far, all cores (/proc/stat; idle and iowait are not busy)."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


def phase(name: str, sink: Sink, n: int, go: Any, timeout: float = 900) -> float:
    before = sink.count
    cpu = _cpu()
    started = time.monotonic()
    go()
    seconds = sink.wait_for(before + n, timeout) - started
    busy, total = (b - a for a, b in zip(cpu, _cpu(), strict=True))
    print(f"  {name:<10} {n} mails in {seconds:6.2f} s  ({n / seconds:6.1f} mails/s)  "
          f"CPU {busy / max(total, 1):4.0%} of {os.cpu_count()} cores  load {os.getloadavg()}", flush=True)
    return seconds


def throughput(cluster: BenchCluster, rt: Any, sink: Sink, n: int, delay: float, serial: list[int],
               batch: int) -> dict[str, Any]:
    from flows.steps import send_outbox

    sink.delay = delay
    print(f"sink answers after {delay * 1000:.0f} ms per message", flush=True)
    times: dict[str, float] = {}
    runs: list[str] = []

    def two_runs() -> None:
        runs[:] = [cluster.run_deployment("ldflow-dispatch", {"linger_seconds": 0, "batch": batch}) for _ in range(2)]

    for name, workers in (("plain", 0), ("1 worker", 1), ("2 workers", 2)):
        queue(rt, n, serial[0])
        serial[0] += n
        if workers:
            for w in range(workers):
                cluster.start_worker(f"bench-{w}", limit=1)
            time.sleep(3)  # registered and polling: a worker's start is not the runs' cost
            times[name] = phase(name, sink, n, two_runs)
            for run in runs:  # both ended (the second, on one worker, finds the outbox empty): none is
                cluster.wait_run(run, 300)  # left scheduled for the next phase's workers to take early
            print("             " + "; ".join(_started(cluster, r) for r in runs), flush=True)
            for w in range(workers):
                cluster.kill(f"bench-{w}")
        else:
            times[name] = phase(name, sink, n, lambda: send_outbox(rt, batch=batch))
    result = {"delay_ms": delay * 1000, "batch": batch, "seconds": times,
              "two_vs_one": times["1 worker"] / times["2 workers"],
              "orchestrated_vs_plain": times["1 worker"] / times["plain"], "load": os.getloadavg()}
    print(f"  2 workers vs 1: {result['two_vs_one']:.2f}x faster (goal >= 1.5)   "
          f"orchestrated vs plain: {result['orchestrated_vs_plain']:.2f}x the time (goal <= 1.3)", flush=True)
    return result


def _started(cluster: BenchCluster, run_id: str) -> str:
    """How long a flow run waited from its creation to a worker taking it (Pending) and to its process
    running it (Running), and how long it ran (the API's times)."""
    from datetime import datetime

    run = cluster.get(f"/flow_runs/{run_id}")
    created, start, end = (datetime.fromisoformat(run[k]) if run.get(k) else None
                           for k in ("created", "start_time", "end_time"))
    if created is None or start is None or end is None:
        return f"{run['name']}: {(run.get('state') or {}).get('type')}"
    pending = [datetime.fromisoformat(s["timestamp"]) for s in cluster.get(f"/flow_run_states/?flow_run_id={run_id}")
               if s["type"] == "PENDING"]
    taken = f"taken {(min(pending) - created).total_seconds():.1f} s, " if pending else ""
    return (f"{run['name']}: {taken}running {(start - created).total_seconds():.1f} s after its creation, "
            f"ran {(end - start).total_seconds():.1f} s")


def _queued_at(rt: Any, request_id: int) -> float:
    """When the write committed its acknowledgement (the outbox row's created_at, the real clock)."""
    from sqlalchemy import select

    from connectors.db.tables import outbox

    with rt.engine.connect() as conn:
        at = conn.execute(select(outbox.c.created_at).where(outbox.c.key == f"{request_id}:intake_acknowledgement")
                          ).scalar_one()
    return float(at.timestamp())


def latency(cluster: BenchCluster, rt: Any, sink: Sink, writes: int, delay: float) -> dict[str, Any]:
    sink.delay = delay
    cluster.start_worker("bench-latency", limit=1)
    run_id = cluster.run_deployment("ldflow-dispatch")  # the deployment's parameters: linger_seconds 30
    cluster.wait_run(run_id, 120, final=("RUNNING",))
    time.sleep(2)
    folder = Path(tempfile.mkdtemp(prefix="ldflow-bench-latency-"))
    seconds = []
    for i in range(writes):
        data = intake(900000 + i)
        address = f"latency-{i}@example.org"
        data["requester"]["email"] = address
        path = folder / f"intake-{i}.json"
        path.write_text(json.dumps(data))
        request_id = int(cluster.ldflow(["submit", "-f", str(path), "--quiet"]).stdout.strip())
        deadline = time.monotonic() + 120
        while address not in sink.first:
            if time.monotonic() > deadline:
                raise RuntimeError(f"write {i}'s mail never arrived")
            time.sleep(0.01)
        seconds.append(sink.first[address] - _queued_at(rt, request_id))
        time.sleep(1)
    cluster.settle(timeout=120)
    cluster.kill("bench-latency")
    result = {"writes": writes, "delay_ms": delay * 1000, "p50_ms": percentile(seconds, 50) * 1000,
              "p95_ms": percentile(seconds, 95) * 1000, "max_ms": max(seconds) * 1000, "load": os.getloadavg()}
    print(f"write -> mail with a worker running (a dispatch lingering): p50 {result['p50_ms']:.0f} ms, "
          f"p95 {result['p95_ms']:.0f} ms, max {result['max_ms']:.0f} ms over {writes} CLI writes  "
          f"load {result['load']}", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=500, help="mails per phase (500)")
    parser.add_argument("--delay-ms", type=float, default=50, help="the sink's answer time per message (50)")
    parser.add_argument("--writes", type=int, default=15, help="CLI writes timed for the latency (15)")
    parser.add_argument("--batch", type=int, default=0,
                        help="outbox rows per claim, plain and deployed (default: the dispatch deployment's)")
    args = parser.parse_args()
    from aiosmtpd.controller import Controller

    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port, ready_timeout=10)
    controller.start()
    cluster = BenchCluster(postgres_admin_url(), Path(tempfile.mkdtemp(prefix="ldflow-bench-scaleout-")))
    try:
        cluster.start(smtp_port)
        cluster.deploy()
        cluster.pause_schedules()
        cluster.switch_off_triggers()
        from flows import bootstrap
        from flows.settings import load_settings

        os.environ.update({k: v for k, v in cluster.base_env().items() if k.startswith("LDFLOW_")})
        os.environ.pop("LDFLOW_SIMULATED_CLOCK", None)
        rt = bootstrap.build(load_settings())
        print(f"environment: {environment()}  load {os.getloadavg()}", flush=True)
        serial = [1]
        batch = args.batch or int(cluster.deployments()["ldflow-dispatch"]["parameters"]["batch"])
        print(f"claims of {batch} outbox rows (the dispatch deployment's batch"
              f"{', from --batch' if args.batch else ''})", flush=True)
        rounds = [throughput(cluster, rt, sink, args.mails, args.delay_ms / 1000, serial, batch)]
        if args.delay_ms:
            rounds.append(throughput(cluster, rt, sink, args.mails, 0.0, serial, batch))
        lat = latency(cluster, rt, sink, args.writes, args.delay_ms / 1000)
        rt.close()
    finally:
        cluster.close()
        controller.stop()
    emit_json("scaleout", {"mails": args.mails, "rounds": rounds, "latency": lat, **environment()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
