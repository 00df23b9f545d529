"""The web app at scale: the board's first page and a request page on SQLite with 100,000 requests
(10,000 open) and 1,000,000 audit events, then 50 concurrent clients on the request page.

Goal (issue 9): p95 server time <= 50 ms for each page, against a bare ``sqlite3`` query of the same
rows in the same run; 50 clients with no error, p99 reported.

The database: one real request per state, made through the Service (tests/builders' valid data),
is the template of every generated one: its document (the title made unique), its card columns,
its history (padded with notes to ~10 events a request), its checkpoint timers. Open requests are
spread over received … measured, the rest acknowledged, declined or cancelled; events are
interleaved in time and hash-chained with ``audit.event_hash``. Bulk inserts; cached under
``.bench/web-<DB_VERSION>-r<schema head>/`` (``--rebuild`` to make it again).

Timed, interleaved, warm cache:
  * ``GET /`` and ``GET /requests/<id>`` (a random open request) through the ASGI app in-process
    (Starlette's TestClient, signed in): routing, session check, the store's reads, the template —
    wall time, and the process's CPU time (on a busy machine wall time waits for a CPU);
  * baseline: the same rows by bare ``sqlite3`` on an open connection — for the board the counts
    per state and the first page's rows (card columns), for a request page its document and its
    newest 50 events.
Load: ``ldflow web`` (uvicorn, one process) on a loopback port and 50 asyncio clients (httpx,
one shared session cookie) fetching random request pages for ``--seconds``; every response must
be a 200 with the page's title. Latency as the client sees it (p50/p95/p99), throughput.

    python bench/web.py [--samples 300] [--seconds 20] [--clients 50] [--rebuild]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]  # bench/transitions.py shadows a library
sys.path.insert(0, str(_HERE.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench._common import BENCH_DIR, emit_json, environment, summary_ms  # noqa: E402
from connectors.db import audit, schema  # noqa: E402
from connectors.db.engine import make_engine  # noqa: E402
from connectors.db.store import SqlStore  # noqa: E402

GOAL_P95_MS = 50.0
DB_VERSION = "w2"  # w2: request_counts filled
T0 = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
OPEN = {"received": 3000, "diagnosed": 2500, "redirected": 500, "designed": 1500, "delivered": 2000, "measured": 500}
CLOSED = {"acknowledged": 70000, "declined": 12000, "cancelled": 8000}
PASSWORD = "bench horse battery staple"
EMAIL = "bench.partner@example.org"
REQUEST_COLUMNS = ("title", "state", "version", "requester_email", "sponsor_email", "document", "owners",
                   "next_action", "missing")


def _templates(scratch: Path) -> dict[str, dict[str, Any]]:
    """One real request per state (through the Service on SQLite): its row, events and timers."""
    from flows.clock import FixedClock
    from flows.service import Service
    from tests.builders import ACTOR, drive_to, intake_data

    engine = make_engine(f"sqlite:///{scratch}")
    schema.ensure_schema(engine)
    service = Service(SqlStore(engine), FixedClock(T0))
    made = {}
    for state in [*OPEN, *CLOSED]:
        path = "redirect" if state == "redirected" else "design"
        made[state] = drive_to(service, state, path=path, actor=ACTOR,
                               intake=intake_data(title=f"TEMPLATE {state}")).id
    engine.dispose()
    raw = sqlite3.connect(scratch)
    raw.row_factory = sqlite3.Row
    found = {}
    for state, rid in made.items():
        row = dict(raw.execute("SELECT * FROM requests WHERE id = ?", (rid,)).fetchone())
        events = [dict(r) for r in raw.execute("SELECT * FROM audit_events WHERE request_id = ? ORDER BY seq", (rid,))]
        timers = [dict(r) for r in raw.execute("SELECT * FROM checkpoints WHERE request_id = ?", (rid,))]
        found[state] = {"row": row, "events": events, "timers": timers}
    raw.close()
    return found


def build(home: Path, n_events: int, console: Console) -> float:
    started = time.perf_counter()
    home.mkdir(parents=True, exist_ok=True)
    path = home / "ldflow.db"
    for p in home.glob("ldflow.db*"):
        p.unlink()
    templates = _templates(home / "templates.db")
    (home / "templates.db").unlink()
    engine = make_engine(f"sqlite:///{path}")
    schema.ensure_schema(engine)
    engine.dispose()
    states = [s for counts in (OPEN, CLOSED) for s, n in counts.items() for _ in range(n)]
    random.Random(9).shuffle(states)
    base = sum(len(templates[s]["events"]) for s in states)
    pad, extra = divmod(max(0, n_events - base), len(states))
    rng = random.Random(20261202)
    timeline: list[tuple[int, int, int]] = []  # (minute, request id, k-th event)
    lengths = {}
    for rid, state in enumerate(states, start=1):
        n = len(templates[state]["events"]) + pad + (1 if rid <= extra else 0)
        lengths[rid] = n
        t = rid * 5  # request i starts at minute 5i: 100,000 requests over ~a year
        for k in range(n):
            timeline.append((t, rid, k))
            t += rng.randint(1, 3 * 24 * 60)
    timeline.sort()
    console.log(f"{len(timeline):,} events on the timeline")
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA journal_mode=DELETE")
    raw.execute("PRAGMA synchronous=OFF")
    raw.execute("BEGIN")
    sql = ('INSERT INTO audit_events (seq, request_id, type, "trigger", from_state, to_state, version, actor, at, '
           "payload, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")
    prev, batch = audit.GENESIS, []
    last_at: dict[int, str] = {}
    moved_at: dict[int, str] = {}
    for seq, (minute, rid, k) in enumerate(timeline, start=1):
        template = templates[states[rid - 1]]["events"]
        e = template[k] if k < len(template) else {
            "type": "note_added", "trigger": None, "from_state": None, "to_state": None,
            "version": template[-1]["version"], "actor": template[-1]["actor"],
            "payload": audit.canonical_json({"source": "", "text": f"Bench note {k} on request {rid}."})}
        at = (T0 + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        row = {"seq": seq, "request_id": rid, "type": e["type"], "trigger": e["trigger"],
               "from_state": e["from_state"], "to_state": e["to_state"], "version": e["version"],
               "actor": e["actor"], "at": at, "payload": e["payload"]}
        prev_hash, prev = prev, audit.event_hash(prev, row)
        batch.append((seq, rid, row["type"], row["trigger"], row["from_state"], row["to_state"], row["version"],
                      row["actor"], at, row["payload"], prev_hash, prev))
        last_at[rid] = at
        if e["to_state"]:
            moved_at[rid] = at
        if len(batch) == 50_000:
            raw.executemany(sql, batch)
            batch.clear()
    raw.executemany(sql, batch)
    heads = dict(raw.execute("SELECT request_id, max(seq) FROM audit_events GROUP BY request_id").fetchall())
    console.log("events written; requests next")
    cols = ("id", *REQUEST_COLUMNS, "created_at", "updated_at", "in_state_since", "head_seq")
    req_sql = f"INSERT INTO requests ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    cp_cols = ("key", "request_id", "item_id", '"offset"', "due_at", "status", "sent_at", "reminders_sent",
               "last_reminder_at", "closed_at", "result")
    cp_sql = f"INSERT INTO checkpoints ({', '.join(cp_cols)}) VALUES ({', '.join('?' * len(cp_cols))})"
    rows, timers = [], []
    for rid, state in enumerate(states, start=1):
        t = templates[state]
        r = t["row"]
        title = f"{r['title'].replace('TEMPLATE ' + state, 'Request')} {rid}: skills for team {rid % 700}"

        def stamp(iso: str) -> str:  # audit time (…Z) as Core stores a DateTime on SQLite
            return iso.replace("T", " ").replace("Z", "")

        created = stamp((T0 + timedelta(minutes=rid * 5)).strftime("%Y-%m-%dT%H:%M:%S.000000Z"))
        document = r["document"].replace(f'"TEMPLATE {state}"', json.dumps(title))
        rows.append((rid, title, state, r["version"], f"req{rid % 900}@example.org", f"sponsor{rid % 300}@example.org",
                     document, r["owners"], r["next_action"], r["missing"], created, stamp(last_at[rid]),
                     stamp(moved_at.get(rid, last_at[rid])), heads[rid]))
        timers += [(f"{rid}:{c['item_id']}:{c['offset']}", rid, c["item_id"], c["offset"], c["due_at"], c["status"],
                    c["sent_at"], c["reminders_sent"], c["last_reminder_at"], c["closed_at"], c["result"])
                   for c in t["timers"]]
    raw.executemany(req_sql, rows)
    raw.executemany(cp_sql, timers)
    raw.execute("DELETE FROM request_counts")  # what the store keeps on every add and state change
    raw.execute("INSERT INTO request_counts (state, n) SELECT state, count(*) FROM requests GROUP BY state")
    raw.execute("COMMIT")
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("ANALYZE")
    raw.close()
    return time.perf_counter() - started


def open_or_build(n_events: int, rebuild: bool, console: Console) -> tuple[Path, float | None]:
    home = BENCH_DIR / f"web-{DB_VERSION}-r{schema.HEAD}-{n_events}"
    path = home / "ldflow.db"
    if path.exists() and not rebuild:
        with sqlite3.connect(path) as check:
            n = check.execute("SELECT count(*) FROM requests").fetchone()[0]
        check.close()
        if n == sum(OPEN.values()) + sum(CLOSED.values()):
            return home, None
    with console.status(f"building {home.name} …"):
        return home, build(home, n_events, console)


def _app(home: Path) -> Any:
    from flows import bootstrap
    from flows.settings import Settings
    from flows.web.app import create_app
    from states.errors import NotFound

    app = bootstrap.build(Settings(home=home))
    try:
        app.accounts.get(EMAIL)
    except NotFound:
        app.accounts.add(EMAIL, "Bench Partner", "partner", PASSWORD)
    return create_app(app)


def _signed_in(web: Any) -> Any:
    from fastapi.testclient import TestClient

    from tests.web_support import csrf_of

    client = TestClient(web, follow_redirects=False)
    token = csrf_of(client.get("/sign-in").text)
    done = client.post("/sign-in", data={"csrf": token, "email": EMAIL, "password": PASSWORD, "next": "/"})
    if done.status_code != 303:
        raise SystemExit(f"could not sign in: {done.status_code}")
    return client


def in_process(home: Path, samples: int, open_ids: list[int], console: Console) -> dict[str, Any]:
    client = _signed_in(_app(home))
    raw = sqlite3.connect(home / "ldflow.db")
    order = [*OPEN, *CLOSED]
    counts_sql = "SELECT state, n FROM request_counts"
    page_sql = ("SELECT id, title, state, version, requester_email, sponsor_email, updated_at, in_state_since, "
                "owners, next_action, missing FROM requests WHERE state = ? ORDER BY updated_at DESC, id DESC "
                "LIMIT ?")

    def raw_board(_: int) -> int:
        counts = dict(raw.execute(counts_sql).fetchall())
        left, got = 50, 0
        for state in order:
            if left <= 0:
                break
            n = len(raw.execute(page_sql, (state, left)).fetchall()) if counts.get(state) else 0
            left, got = left - n, got + n
        return got

    def raw_request(rid: int) -> int:
        raw.execute("SELECT version, document FROM requests WHERE id = ?", (rid,)).fetchone()
        return len(raw.execute("SELECT * FROM audit_events WHERE request_id = ? ORDER BY seq DESC LIMIT 50",
                               (rid,)).fetchall())

    def page(url: str) -> int:
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code}")
        return len(response.content)

    runs = {"board": lambda rid: page("/"), "raw board": raw_board,
            "request": lambda rid: page(f"/requests/{rid}"), "raw request": raw_request}
    rng = random.Random(5)
    for rid in rng.sample(open_ids, 20):  # warm-up
        for fn in runs.values():
            fn(rid)
    timings: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    with console.status(f"timing {samples} rounds in-process …"):
        for i, rid in enumerate(rng.sample(open_ids, samples)):
            for name in names[i % 4:] + names[:i % 4]:
                c0, t0 = time.process_time(), time.perf_counter()
                runs[name](rid)
                timings[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    raw.close()
    return {**{name: summary_ms(ts) for name, ts in timings.items()},
            **{f"cpu {name}": summary_ms(ts) for name, ts in cpu.items()}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _load(base: str, cookies: dict[str, str], ids: list[int], clients: int, seconds: float) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, cookies=cookies, limits=limits, timeout=30) as http:
        async def one(n: int) -> None:
            rng = random.Random(n)
            while time.perf_counter() < deadline:
                rid = rng.choice(ids)
                t0 = time.perf_counter()
                try:
                    response = await http.get(f"/requests/{rid}")
                    ok = response.status_code == 200 and f"#{rid}" in response.text
                    if not ok:
                        errors.append(f"{rid}: {response.status_code}")
                except httpx.HTTPError as exc:
                    errors.append(f"{rid}: {exc!r}")
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(clients)))
        elapsed = time.perf_counter() - started
    return {"requests": len(latencies), "errors": len(errors), "first_errors": errors[:5],
            "per_second": round(len(latencies) / elapsed, 1), "ms": summary_ms(latencies)}


def load_test(home: Path, ids: list[int], clients: int, seconds: float, console: Console) -> dict[str, Any]:
    port = _free_port()
    client = _signed_in(_app(home))
    cookies = {k: v for k, v in client.cookies.items()}
    env = {**os.environ, "LDFLOW_HOME": str(home), "LDFLOW_WEB_PORT": str(port), "LDFLOW_WEB_HOST": "127.0.0.1"}
    ldflow = Path(sys.executable).parent / "ldflow"
    server = subprocess.Popen([str(ldflow), "web"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("ldflow web did not start")
        with console.status(f"{clients} clients for {seconds:g} s on the request page …"):
            return asyncio.run(_load(f"http://127.0.0.1:{port}", cookies, ids, clients, seconds))
    finally:
        server.terminate()
        server.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=300, help="in-process rounds (default 300)")
    parser.add_argument("--events", type=int, default=1_000_000, help="audit events (default 1,000,000)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients of the load test")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the load test runs")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached database")
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 110))
    load_before = os.getloadavg()[0]
    home, build_s = open_or_build(args.events, args.rebuild, console)
    raw = sqlite3.connect(home / "ldflow.db")
    marks = ",".join("?" * len(OPEN))
    open_ids = [r[0] for r in raw.execute(f"SELECT id FROM requests WHERE state IN ({marks})", tuple(OPEN))]
    n_events = raw.execute("SELECT count(*) FROM audit_events").fetchone()[0]
    n_requests = raw.execute("SELECT count(*) FROM requests").fetchone()[0]
    raw.close()
    stats = in_process(home, args.samples, open_ids, console)
    load = load_test(home, open_ids, args.clients, args.seconds, console)
    load_after = os.getloadavg()[0]

    table = Table(title=f"Web pages: {n_requests:,} requests ({len(open_ids):,} open), {n_events:,} audit events, "
                        f"{args.samples} rounds in-process (ms)")
    for col in ("what", "p50", "p95", "p99", "max", f"p95 ≤ {GOAL_P95_MS:g} ms?", "p95 vs raw"):
        table.add_column(col, justify="right")
    for page in ("board", "request"):
        for name in (page, f"raw {page}"):
            s = stats[name]
            met = "[green]yes[/green]" if s["p95"] <= GOAL_P95_MS else "[red]no[/red]"
            ok = "" if name.startswith("raw") else met
            ratio = "" if name.startswith("raw") else f"{s['p95'] / stats[f'raw {page}']['p95']:.1f}×"
            label = {"board": "GET / (board, first page)", "raw board": "  bare sqlite3: counts + the page's rows",
                     "request": "GET /requests/<id>", "raw request": "  bare sqlite3: document + newest 50 events"}
            table.add_row(label[name], *(f"{s[k]:.2f}" for k in ("p50", "p95", "p99", "max")), ok, ratio)
    console.print(table)
    console.print("CPU time of this process per page (server and in-process client; what a quiet machine's wall "
                  "time would be): " + "; ".join(f"{p} p50 {stats['cpu ' + p]['p50']:.1f} / p95 "
                                                 f"{stats['cpu ' + p]['p95']:.1f} ms" for p in ("board", "request")))
    ms = load["ms"]
    console.print(f"Load: {args.clients} clients × {args.seconds:g} s on GET /requests/<id> (ldflow web, one uvicorn "
                  f"process, loopback): {load['requests']:,} responses, {load['errors']} errors, "
                  f"{load['per_second']:,}/s; p50 {ms['p50']:.1f} ms, p95 {ms['p95']:.1f} ms, p99 {ms['p99']:.1f} ms")
    if load["errors"]:
        console.print(f"[red]errors: {load['first_errors']}[/red]")
    if max(load_before, load_after) > 1.0:
        console.print(f"[yellow]The machine was busy (load average {load_before:.1f} before, {load_after:.1f} after, "
                      f"{os.cpu_count()} CPUs): figures are noisy.[/yellow]")
    console.print(f"built {home.name} in {build_s:.0f} s" if build_s else f"reused the cached {home.name}")
    goal = all(stats[p]["p95"] <= GOAL_P95_MS for p in ("board", "request")) and not load["errors"]
    emit_json("web", {"env": environment(), "load_average": [round(load_before, 2), round(load_after, 2)],
                      "requests": n_requests, "open": len(open_ids), "events": n_events, "samples": args.samples,
                      "goal_p95_ms": GOAL_P95_MS, "goal_met": goal,
                      "ms": {k: {m: round(v, 3) for m, v in s.items()} for k, s in stats.items()},
                      "ratio_p95_board_vs_raw": round(stats["board"]["p95"] / stats["raw board"]["p95"], 1),
                      "ratio_p95_request_vs_raw": round(stats["request"]["p95"] / stats["raw request"]["p95"], 1),
                      "load": {"clients": args.clients, "seconds": args.seconds, **load}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
