"""The scale-out path end to end (issue 12 item 9; `.ci/run` runs it under `timeout`):

    .venv/bin/python -m tests.scaleout.e2e [--requests 24]

A Prefect server on PostgreSQL, `prefect deploy --all`, `ldflow prefect-setup`, two process workers
(`ldflow worker`), one ldflow PostgreSQL database, mail to a loopback aiosmtpd sink. Requests are
taken through every stage (submitted, diagnosed … delivered by the people's commands; drop-folder
intakes; checkpoints due at 1, 30 and 90 days on a simulated clock; measured; acknowledged) while
the check starts the flow runs on the workers: two `followups` at once, two `dispatch` (one waits
for the other). At 30 days one worker is SIGKILLed, with its flow run, in the middle of a dispatch:
the zombie automation marks that run Crashed, its concurrency slot is freed (the next dispatch runs),
its rows are sent by the next dispatch, and the ops address gets one alert for the run.

Then: every checkpoint fired once, every mail delivered once (a row the killed relay was
transmitting may be `unknown`: then it was alerted), the audit chain verifies, no run left Running.
Exit 0 when all hold, 1 with what did not. Every process and database it made is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.conftest import postgres_admin_url
from tests.scaleout.cluster import Cluster, free_port

STARTED = time.monotonic()


def log(text: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f} s] {text}", flush=True)


class Sink:
    """aiosmtpd handler: every message's Message-ID per recipient; an optional delay per message."""

    def __init__(self) -> None:
        self.got: collections.Counter[tuple[str, str]] = collections.Counter()
        self.delay = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        from email import message_from_bytes

        message_id = str(message_from_bytes(envelope.original_content)["Message-ID"]).strip()
        if self.delay:
            await asyncio.sleep(self.delay)
        for rcpt in envelope.rcpt_tos:
            self.got[(message_id, rcpt.lower())] += 1
        return "250 OK"


def parent_chain(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        chain.append(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return chain


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def flow_run_pid(run_id: str) -> int:
    """The process running a flow run (the process worker gives it PREFECT__FLOW_RUN_ID)."""
    marker = f"PREFECT__FLOW_RUN_ID={run_id}".encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "environ").read_bytes().split(b"\0"):
                    return int(proc.name)
            except OSError:
                continue
    raise RuntimeError(f"no process runs flow run {run_id}")


class Check:
    def __init__(self, cluster: Cluster, sink: Sink, n: int) -> None:
        self.cluster, self.sink, self.n = cluster, sink, n
        self.failures: list[str] = []
        self.crashed_run: str | None = None

    def expect(self, ok: bool, what: str) -> None:
        log(("ok    " if ok else "FAIL  ") + what)
        if not ok:
            self.failures.append(what)

    def stage(self, *deployments: str, timeout: float = 240) -> None:
        # the check's own dispatch runs end once the outbox is empty (the triggered ones linger as deployed)
        runs = [self.cluster.run_deployment(d, {"lease_seconds": 30, "linger_seconds": 0}
                                            if d == "ldflow-dispatch" else None)
                for d in deployments]
        for run in runs:
            self.cluster.wait_run(run, timeout)

    def settle(self, timeout: float = 120) -> None:
        """Until no flow run is due, pending or running (the triggered dispatches)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = time.time()
            busy = [r for r in self.cluster.flow_runs(["RUNNING", "PENDING", "SCHEDULED", "CANCELLING"])
                    if r["state"]["type"] != "SCHEDULED" or _epoch(r["expected_start_time"]) < now + 5]
            if not busy:
                return
            time.sleep(2)

    def dispatch_with_a_kill(self) -> None:
        """A dispatch whose worker (and flow run) is SIGKILLed mid-way; the run becomes Crashed."""
        self.sink.delay = 0.3
        before = sum(self.sink.got.values())
        run_id = self.cluster.run_deployment("ldflow-dispatch", {"lease_seconds": 30, "batch": 5})
        deadline = time.monotonic() + 180
        while sum(self.sink.got.values()) < before + 3:
            if time.monotonic() > deadline:
                raise RuntimeError("the dispatch to kill never started sending")
            time.sleep(0.05)
        run = self.cluster.get(f"/flow_runs/{run_id}")
        pid = flow_run_pid(run_id)
        chain = parent_chain(pid)
        [worker] = [name for name, proc in self.cluster.procs.items() if proc.pid in chain]
        os.kill(pid, 9)
        self.cluster.kill(worker)  # the machine died: the worker and its flow run
        log(f"killed {worker} (and its flow run {run['name']}, pid {pid}) after "
            f"{sum(self.sink.got.values()) - before} mail(s) of the dispatch")
        self.sink.delay = 0.0
        self.cluster.start_worker(f"{worker}-again")
        t = time.monotonic()
        crashed = self.cluster.wait_run(run_id, 300, final=("CRASHED",))
        self.expect(crashed["state"]["type"] == "CRASHED",
                    f"the killed run was marked Crashed by the zombie automation ({time.monotonic() - t:.0f} s)")
        self.crashed_run = run_id
        t = time.monotonic()
        # the slot is free again: this dispatch is not kept waiting (and the drop folder is taken in meanwhile)
        self.stage("ldflow-dispatch", "ldflow-intake", timeout=200)
        self.expect(True, f"a dispatch ran after the crash ({time.monotonic() - t:.0f} s, with an intake)")


def run_check(cluster: Cluster, sink: Sink, n: int) -> list[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from bench._common import intake
    from bench.pipeline import START, _at, people
    from flows import bootstrap
    from flows.settings import load_settings

    os.environ.update({k: v for k, v in cluster.base_env().items() if k.startswith("LDFLOW_")})
    rt = bootstrap.build(load_settings())
    check = Check(cluster, sink, n)
    try:
        rt.clock.set(START)
        ids = people(rt, [], "start", n)
        drop = rt.settings.drop_dir
        drop.mkdir(parents=True, exist_ok=True)
        for i in range(2):
            (drop / f"intake-{i}.json").write_text(json.dumps(intake(1000 + i)))
        log(f"{n} requests delivered, 2 intakes in the drop folder")
        # the first dispatch (no flow run has published the mails' events yet: nothing triggered) dies
        check.dispatch_with_a_kill()
        for days, record in ((1, "relevance:P1D"), (30, "pipeline:P30D"), (90, "pipeline:P90D")):
            rt.clock.set(_at(days))
            # side by side, on both workers; their events trigger the dispatch of what they queued
            check.stage("ldflow-followups", "ldflow-followups")
            people(rt, ids, record)
            log(f"day {days}: checkpoints fired, results recorded")
        rt.clock.set(_at(91))
        check.stage("ldflow-advance")
        people(rt, ids, "acknowledge")
        check.stage("ldflow-dispatch")
        check.settle()
        verify(check, rt, n)
    finally:
        rt.close()
    return check.failures


def verify(check: Check, rt: Any, n: int) -> None:
    from sqlalchemy import text

    with rt.engine.connect() as conn:
        rows = conn.execute(text("SELECT key, status, message_id, notification FROM outbox")).all()
        sent_events = conn.execute(text(
            "SELECT request_id, payload FROM audit_events WHERE type = 'survey_sent'")).all()
        open_checkpoints = conn.execute(text(
            "SELECT count(*) FROM checkpoints WHERE status IN ('scheduled', 'sent')")).scalar_one()
    statuses = collections.Counter(r.status for r in rows)
    # the requests' own mails: 11 per request (the 10 of the lifecycle and the requester's "delivered"),
    # one acknowledgement per mailed-in intake; alerts and the daily attention digests are checked apart
    requests_rows = [r for r in rows if not r.key.startswith(("alert:", "attention_digest:"))]
    alerts = {r.key: r for r in rows if r.key.startswith("alert:")}
    check.expect(len(requests_rows) == 11 * n + 2, f"{len(requests_rows)} mails queued for {n} requests "
                                                   f"+ 2 intakes (want {11 * n + 2})")
    unknown = [r.key for r in requests_rows if r.status == "unknown"]
    check.expect(all(r.status in ("sent", "unknown") for r in rows) and len(unknown) <= 1,
                 f"every mail sent (statuses {dict(statuses)}; unknown: {unknown})")
    check.expect(all(f"alert:mail:{k}:unknown" in alerts for k in unknown), "each unknown mail alerted once")
    twice = {k: c for k, c in check.sink.got.items() if c > 1}
    check.expect(not twice, f"no mail delivered twice ({len(twice)} were)")
    missing = []
    for r in rows:
        if r.status != "sent":
            continue
        to = [p["email"].lower() for p in json.loads(r.notification)["to"]]
        if r.key.split(":")[1:2] in (["plan_approval_request"], ["survey"]) and len(to) > 1:
            continue  # sent to each recipient alone, each with its own Message-ID
        if not any((r.message_id, addr) in check.sink.got for addr in to):
            missing.append(r.key)
    check.expect(not missing, f"every sent row's message reached the sink ({len(missing)} did not: {missing[:3]})")
    fired = collections.Counter((e.request_id, json.loads(e.payload)["checkpoint"]) for e in sent_events)
    check.expect(len(fired) == 3 * n and set(fired.values()) == {1},
                 f"every checkpoint fired once ({len(fired)} fired, most {max(fired.values(), default=0)} times)")
    check.expect(open_checkpoints == 0, f"no checkpoint left open ({open_checkpoints})")
    check.expect(check.crashed_run is not None and f"alert:run:{check.crashed_run}" in alerts
                 and alerts[f"alert:run:{check.crashed_run}"].status == "sent",
                 "the crashed run was alerted to the ops address")
    ops = [k for k in check.sink.got if k[1] == "ops@example.org"]
    check.expect(len(ops) == len(alerts), f"the ops address got each alert once ({len(ops)} for {len(alerts)})")
    audit = check.cluster.ldflow(["audit", "verify"], check=False)
    check.expect(audit.returncode == 0, f"the audit chain verifies: {audit.stdout.strip()[-200:]}")
    deadline = time.monotonic() + 60
    while (left := check.cluster.flow_runs(["RUNNING", "PENDING", "CANCELLING"])) and time.monotonic() < deadline:
        time.sleep(2)
    check.expect(not left, f"no flow run left Running ({[r['name'] for r in left]})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8)
    args = parser.parse_args()
    import signal

    # `timeout` ends the check with SIGTERM: clean up (processes, databases) as on any other failure
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    from aiosmtpd.controller import Controller

    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port, ready_timeout=10)
    controller.start()
    cluster = Cluster(postgres_admin_url(), Path(tempfile.mkdtemp(prefix="ldflow-scaleout-")))
    try:
        cluster.start(smtp_port)
        log(f"Prefect server on PostgreSQL at {cluster.api}")
        cluster.deploy()
        cluster.pause_schedules()
        log("prefect deploy --all and ldflow prefect-setup done; schedules paused (the check starts the runs)")
        cluster.start_worker("worker-a")
        cluster.start_worker("worker-b")
        failures = run_check(cluster, sink, args.requests)
    except Exception as exc:
        failures = [f"{type(exc).__name__}: {exc}"]
        log(f"FAIL  {failures[0]} (logs in {cluster.root / 'logs'})")
    finally:
        cluster.close()
        controller.stop()
    log("scale-out check " + ("passed" if not failures else f"FAILED: {len(failures)} problem(s)"))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
