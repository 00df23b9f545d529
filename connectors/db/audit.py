"""The tamper-evident audit chains in the database: appending, signed checkpoints, verification.

One hash chain per request (the rules — ``FIELDS``, ``event_hash``, ``verify_chain`` — live in
:mod:`connectors.audit_chain`, shared with the in-memory store and the offline bundle); the
request row records its chain head (``head_seq`` = number of events, ``head_hash``). Rows are
append-only (database triggers refuse UPDATE and DELETE), and :func:`verify` still catches a
tamperer who removed the triggers: it walks every chain (in worker processes over ranges of
request ids when there are many events) and checks the signed checkpoints
(:mod:`connectors.audit_checkpoints`), naming the first broken event.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, func, insert, select

from connectors import audit_checkpoints as cps
from connectors.audit_chain import FIELDS as FIELDS
from connectors.audit_chain import GENESIS as GENESIS
from connectors.audit_chain import ChainFault, ChainWalker, chain, head_mac
from connectors.audit_chain import canonical_json as canonical_json
from connectors.audit_chain import doc_hash as doc_hash
from connectors.audit_chain import event_hash as event_hash
from connectors.db.engine import CHECKPOINT_LOCK_KEY, read_transaction, write_transaction
from connectors.db.tables import audit_checkpoints, audit_events, requests
from connectors.ports import AuditRecord as AuditRecord
from connectors.ports import VerifyReport as VerifyReport

# Verify in worker processes from this many events on (below, starting them costs more than it saves).
PARALLEL_FROM = 100_000
CHUNK_EVENTS = 50_000


def to_record(row: Any) -> AuditRecord:
    m = row._mapping
    return AuditRecord(seq=m["seq"], request_id=m["request_id"], type=m["type"], trigger=m["trigger"],
                       from_state=m["from_state"], to_state=m["to_state"], version=m["version"],
                       actor=m["actor"], at=m["at"], payload=json.loads(m["payload"]),
                       prev_hash=m["prev_hash"], hash=m["hash"], rseq=m["rseq"], doc=m["doc"])


_INSERT = insert(audit_events)


def append(conn: Connection, head: tuple[int, str], rows: Sequence[dict[str, Any]]) -> tuple[int, str]:
    """Chain ``rows`` (hashed fields but rseq) after the request's ``head`` = (rseq, hash) and insert
    them; return the new head. The caller holds the request's row lock (or SQLite's write lock)."""
    chained = chain(head, rows)
    if chained:
        conn.execute(_INSERT, chained)
        return chained[-1]["rseq"], chained[-1]["hash"]
    return head


# --- checkpoints ---------------------------------------------------------------------------------------

def _checkpoint(row: Any) -> cps.SignedCheckpoint:
    return cps.SignedCheckpoint(row.n, row.body, row.heads, row.signature)


def checkpoints(conn: Connection) -> list[cps.SignedCheckpoint]:
    return [_checkpoint(r) for r in conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.n))]


def latest_checkpoint(conn: Connection) -> cps.SignedCheckpoint | None:
    row = conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.n.desc()).limit(1)).first()
    return _checkpoint(row) if row else None


_TOTALS = select(func.count(), func.coalesce(func.sum(requests.c.head_seq), 0))
_HEADS = select(requests.c.id, requests.c.head_seq, requests.c.head_hash).order_by(requests.c.id)


def write_checkpoint(engine: Engine, key: Any, at: datetime) -> cps.SignedCheckpoint | None:
    """Sign the heads of every chain as checkpoint n+1; None (nothing written) when no request and no
    event was added since the latest checkpoint — one aggregate query, so a pipeline pass may call it."""
    with write_transaction(engine, CHECKPOINT_LOCK_KEY) as conn:
        latest = latest_checkpoint(conn)
        n_requests, n_events = conn.execute(_TOTALS).one()
        if latest is not None:
            body = cps.body_of(latest)
            if (body["requests"], body["events"]) == (n_requests, int(n_events)):
                return None
        heads = [(int(i), int(c), str(h)) for i, c, h in conn.execute(_HEADS)]
        max_seq = conn.execute(select(func.coalesce(func.max(audit_events.c.seq), 0))).scalar_one()
        cp = cps.make(key, (latest.n if latest else 0) + 1, at.isoformat(), heads, int(max_seq), latest)
        conn.execute(insert(audit_checkpoints).values(n=cp.n, created_at=at, body=cp.body, heads=cp.heads,
                                                      signature=cp.signature))
    return cp


# --- verification --------------------------------------------------------------------------------------

_EVENT_COLUMNS = ", ".join((*FIELDS, "prev_hash", "hash", "seq"))


def _ranges(conn: Connection, n_events: int, chunk: int) -> list[tuple[int | None, int | None]]:
    """Request-id ranges [lo, hi) of about ``chunk`` events each; the first and last are open-ended, so
    events of a request missing from ``requests`` are walked too."""
    if n_events <= chunk:
        return [(None, None)]
    bounds, acc = [], 0
    for rid, n in conn.execute(select(requests.c.id, requests.c.head_seq).order_by(requests.c.id)):
        acc += n
        if acc >= chunk:
            bounds.append(rid + 1)
            acc = 0
    edges: list[int | None] = [None, *bounds, None]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def _where(dialect: str, lo: int | None, hi: int | None, column: str) -> tuple[str, tuple[int, ...]]:
    mark = "?" if dialect == "sqlite" else "%s"
    conds, params = [], []
    if lo is not None:
        conds.append(f"{column} >= {mark}")
        params.append(lo)
    if hi is not None:
        conds.append(f"{column} < {mark}")
        params.append(hi)
    return (" WHERE " + " AND ".join(conds)) if conds else "", tuple(params)


# (events checked, requests checked, first chain fault, heads, marked hashes, first unsealed head)
ChunkResult = tuple[int, int, "ChainFault | None", dict[int, tuple[int, str]], dict[int, str], "ChainFault | None"]


def _unsealed(rid: int, head: tuple[int, str], stored_mac: str, key: bytes,
              signed: dict[int, tuple[int, str]]) -> ChainFault | None:
    """A chain head without the audit key's HMAC is accepted only as the latest checkpoint signed it."""
    if stored_mac == head_mac(key, rid, *head) or signed.get(rid) == head:
        return None
    first = signed[rid][0] + 1 if rid in signed and signed[rid][0] < head[0] else 1
    return ChainFault(rid, first, f"events {first} to {head[0]} are not sealed with the audit key (the chain head's "
                                  "HMAC does not match): they were appended, replaced or cut off by someone "
                                  "without the key")


def verify_range(engine: Engine, lo: int | None, hi: int | None, signed: dict[int, tuple[int, str]],
                 key: bytes | None = None) -> ChunkResult:
    """Walk the chains of requests lo ≤ id < hi: (events checked, requests checked, first fault,
    id → (count, newest hash) of the walked chains, id → hash of the event at the count the latest
    checkpoint signed, ``signed``). With ``key``, each head's HMAC is checked too."""
    marks = {rid: count for rid, (count, _) in signed.items()}
    dialect = engine.dialect.name
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        where, params = _where(dialect, lo, hi, "id")
        cur.execute(f"SELECT id, head_seq, head_hash, state, version, document, head_mac FROM requests{where}", params)
        rows_by_id = {r[0]: ((int(r[1]), r[2]), doc_hash(r[3], r[4], r[5]), r[6]) for r in cur.fetchall()}
        where, params = _where(dialect, lo, hi, "+request_id" if dialect == "sqlite" else "request_id")
        # Storage order (seq), not the (request_id, rseq) index: a sequential scan, each request's events in order.
        cur.execute(f"SELECT {_EVENT_COLUMNS} FROM audit_events{where} ORDER BY seq", params)
        walker = ChainWalker(marks)
        walker.feed(cast("Iterable[Any]", cur))
        first, unsealed = None, None
        heads: dict[int, tuple[int, str]] = {}
        marked: dict[int, str] = {}
        for rid in sorted(set(walker.state) | set(rows_by_id)):
            row = rows_by_id.get(rid)
            fault, mark_hash = walker.finish(rid, row[0] if row else None, row[1] if row else None)
            if fault is None and row is not None and key is not None and unsealed is None:
                unsealed = _unsealed(rid, row[0], row[2], key, signed)
            if fault is not None and first is None:
                first = fault
            if row is not None:
                heads[rid] = row[0]
            if mark_hash is not None:
                marked[rid] = mark_hash
        checked = walker.checked
        cur.close()
    finally:
        raw.close()
    return checked, len(heads), first, heads, marked, unsealed


def _within(signed: dict[int, tuple[int, str]], lo: int | None, hi: int | None) -> dict[int, tuple[int, str]]:
    return {rid: h for rid, h in signed.items() if (lo is None or rid >= lo) and (hi is None or rid < hi)}


def _verify_in_child(url: str, lo: int | None, hi: int | None, signed: dict[int, tuple[int, str]],
                     key: bytes | None) -> ChunkResult:
    from connectors.db.engine import make_engine

    engine = make_engine(url)
    try:
        return verify_range(engine, lo, hi, signed, key)
    finally:
        engine.dispose()


def verify(engine: Engine, public_key: str | None = None, mac: bytes | None = None,
           workers: int | None = None) -> VerifyReport:
    """Walk every chain and check the signed checkpoints; report the first broken link, or ok.

    ``public_key`` (hex) is the key checkpoints must be signed with (None: the key the first names);
    ``mac`` the secret of the chain heads' HMACs (``audit_checkpoints.mac_key``; None: not checked)."""
    with read_transaction(engine) as conn:
        n_events = int(conn.execute(select(func.count()).select_from(audit_events)).scalar_one())
        stored = checkpoints(conn)
        latest = stored[-1] if stored else None
        signed = {rid: (count, h) for rid, count, h in cps.heads_of(latest)} if latest else {}
        url = engine.url.render_as_string(hide_password=False)
        parallel = (workers or 2) > 1 and n_events >= PARALLEL_FROM and ":memory:" not in url
        # One range per worker: each worker scans the table once in storage order and keeps its requests' rows.
        n_workers = workers or min(4, os.cpu_count() or 1)
        ranges = _ranges(conn, n_events, max(CHUNK_EVENTS, -(-n_events // n_workers))) if parallel else [(None, None)]
    if parallel and len(ranges) > 1:
        with ProcessPoolExecutor(max_workers=n_workers) as pool:
            parts = list(pool.map(_verify_in_child, [url] * len(ranges), [lo for lo, _ in ranges],
                                  [hi for _, hi in ranges], [_within(signed, lo, hi) for lo, hi in ranges],
                                  [mac] * len(ranges)))
    else:
        parts = [verify_range(engine, None, None, signed, mac)]
    checked = sum(p[0] for p in parts)
    n_requests = sum(p[1] for p in parts)
    faults = [p[2] for p in parts if p[2] is not None]
    if faults:
        f = min(faults, key=lambda x: x.request_id)
        tail = _cut_tail(stored, public_key, parts)  # a cut-off tail says more than what it left behind
        if tail is not None and tail.request_id is not None and tail.request_id <= f.request_id:
            return VerifyReport(False, checked, n_requests, None, tail.request_id, tail.reason,
                                broken_rseq=tail.rseq, checkpoint=tail.n, checkpoints_checked=len(stored))
        return VerifyReport(False, checked, n_requests, f.seq, f.request_id, f"request {f.request_id}: {f.reason}",
                            broken_rseq=f.rseq, checkpoints_checked=len(stored))
    return _check_checkpoints(stored, public_key, parts, checked, n_requests)


def _cut_tail(stored: list[cps.SignedCheckpoint], public_key: str | None,
              parts: list[ChunkResult]) -> cps.CheckpointFault | None:
    if not stored or not cps.signature_ok(stored[-1], public_key or str(cps.body_of(stored[0]).get("key"))):
        return None
    current: dict[int, tuple[int, str]] = {}
    for p in parts:
        current.update(p[3])
    return cps.check_against_chains(stored[-1], current, {}, tails_only=True)


def _check_checkpoints(stored: list[cps.SignedCheckpoint], public_key: str | None, parts: list[ChunkResult],
                       checked: int, n_requests: int) -> VerifyReport:
    fault = cps.verify_signatures(stored, public_key)
    if fault is None and stored:
        current: dict[int, tuple[int, str]] = {}
        marked: dict[int, str] = {}
        for p in parts:
            current.update(p[3])
            marked.update(p[4])
        fault = cps.check_against_chains(stored[-1], current, marked)
    if fault is not None:
        return VerifyReport(False, checked, n_requests, None, fault.request_id, fault.reason,
                            broken_rseq=fault.rseq, checkpoint=fault.n, checkpoints_checked=len(stored))
    # Last: heads the checkpoints cannot vouch for (written after the latest) must carry the key's HMAC.
    seals = [p[5] for p in parts if p[5] is not None]
    if seals:
        f = min(seals, key=lambda x: x.request_id)
        return VerifyReport(False, checked, n_requests, None, f.request_id, f"request {f.request_id}: {f.reason}",
                            broken_rseq=f.rseq, checkpoints_checked=len(stored))
    return VerifyReport(True, checked, n_requests, checkpoints_checked=len(stored))


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_events)).scalar_one())
