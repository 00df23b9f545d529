"""Tamper evidence: the database refuses UPDATE/DELETE on the history, and ``verify`` catches a
tamperer who removed those triggers — also one who knows the algorithm and re-hashes — naming the
first broken event (request and its event number) or the missing tail."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from connectors import audit_checkpoints as cps
from connectors.audit_chain import GENESIS, doc_hash, event_hash
from connectors.db import audit
from connectors.db.store import SqlStore
from connectors.db.tables import audit_checkpoints, audit_events, requests
from flows.clock import FixedClock
from flows.service import Service
from tests.builders import ACTOR, diagnosis_data, drive_to, intake_data, plan_data

ROOT = Path(__file__).resolve().parents[2]
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def build_history(engine: Engine, clock: FixedClock, key: Any = KEY) -> dict[int, list[int]]:
    """Three requests with interleaved events; returns each request's global seqs."""
    service = Service(SqlStore(engine, signing_key=key), clock)
    a = service.submit(intake_data(title="Request A"), ACTOR).id  # 1
    b = service.submit(intake_data(title="Request B"), ACTOR).id  # 2
    service.diagnose(a, diagnosis_data(), ACTOR)  # 3
    service.add_note(b, "waiting for the sponsor", ACTOR)  # 4
    service.draft_plan(a, plan_data(), ACTOR)  # 5
    c = service.submit(intake_data(title="Request C"), ACTOR).id  # 6
    service.add_note(c, "first note", ACTOR)  # 7
    service.add_note(c, "second note", ACTOR)  # 8
    assert service.verify().ok
    with engine.connect() as conn:
        rows = conn.execute(select(audit_events.c.seq, audit_events.c.request_id, audit_events.c.rseq)
                            .order_by(audit_events.c.seq)).all()
    seqs: dict[int, list[int]] = {}
    for seq, rid, rseq in rows:
        seqs.setdefault(rid, []).append(seq)
        assert rseq == len(seqs[rid])  # each request numbers its own events 1, 2, …
    assert seqs == {a: [1, 3, 5], b: [2, 4], c: [6, 7, 8]}
    return seqs


def store(engine: Engine) -> SqlStore:
    return SqlStore(engine, signing_key=KEY)


def drop_triggers(engine: Engine) -> None:
    """What a tamperer with database access does first."""
    with engine.begin() as conn:
        for table in ("audit_events", "audit_checkpoints"):
            if engine.dialect.name == "postgresql":
                conn.execute(text(f"DROP TRIGGER {table}_no_update ON {table}"))
                conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}"))
            else:
                conn.execute(text(f"DROP TRIGGER {table}_no_update"))
                conn.execute(text(f"DROP TRIGGER {table}_no_delete"))


def event(conn: Connection, rid: int, rseq: int) -> dict[str, Any]:
    return dict(conn.execute(select(audit_events).where(audit_events.c.request_id == rid,
                                                        audit_events.c.rseq == rseq)).one()._mapping)


def where(rid: int, rseq: int) -> Any:
    return (audit_events.c.request_id == rid) & (audit_events.c.rseq == rseq)


# --- the database itself refuses -------------------------------------------------------------------------

@pytest.mark.parametrize("statement", [
    update(audit_events).where(audit_events.c.seq == 2).values(actor="mallory@example.org"),
    update(audit_events).values(payload="{}"),
    delete(audit_events).where(audit_events.c.seq == 3),
    delete(audit_events),
    update(audit_checkpoints).values(signature="00"),
    delete(audit_checkpoints),
], ids=["update-one", "update-all", "delete-one", "delete-all", "update-checkpoint", "delete-checkpoint"])
def test_the_database_refuses_to_change_history(engine: Engine, clock: FixedClock, statement: Any) -> None:
    build_history(engine, clock)
    store(engine).checkpoint(clock.now())
    before = SqlStore(engine).history(1)
    with pytest.raises(DBAPIError) as info, engine.begin() as conn:
        conn.execute(statement)
    assert "append-only" in str(info.value)
    assert SqlStore(engine).history(1) == before
    assert store(engine).verify().ok


@pytest.mark.postgres
def test_postgres_refuses_truncate(pg_engine: Engine, clock: FixedClock) -> None:
    build_history(pg_engine, clock)
    with pytest.raises(DBAPIError) as info, pg_engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_events"))
    assert "append-only" in str(info.value)
    assert audit.count(pg_engine) == 8


# --- a tamperer who does not re-hash: the chains themselves betray it --------------------------------------

def alter_payload(conn: Connection) -> tuple[int, int]:
    conn.execute(update(audit_events).where(where(2, 2))
                 .values(payload=audit.canonical_json({"text": "the sponsor approved the budget"})))
    return 2, 2


def alter_actor(conn: Connection) -> tuple[int, int]:
    conn.execute(update(audit_events).where(where(1, 2)).values(actor="mallory@example.org"))
    return 1, 2


def alter_state(conn: Connection) -> tuple[int, int]:
    conn.execute(update(audit_events).where(where(1, 2)).values(to_state="designed"))
    return 1, 2


def delete_middle(conn: Connection) -> tuple[int, int]:
    conn.execute(delete(audit_events).where(where(1, 2)))
    return 1, 2


def cut_tail(conn: Connection) -> tuple[int, int]:
    """Delete request C's last two events (its head still says 3)."""
    conn.execute(delete(audit_events).where(audit_events.c.request_id == 3, audit_events.c.rseq >= 2))
    return 3, 2


def cut_whole_request(conn: Connection) -> tuple[int, int]:
    conn.execute(delete(audit_events).where(audit_events.c.request_id == 3))
    return 3, 1


def _forged(conn: Connection, rid: int, after: int, *, rehash: bool) -> dict[str, Any]:
    prev = event(conn, rid, after)
    forged = {**prev, "rseq": after + 1, "type": "plan_approved", "trigger": None, "from_state": None,
              "to_state": None, "actor": "sam.sponsor@example.org",
              "payload": audit.canonical_json({"approver": "sam.sponsor@example.org", "comment": "ok"}),
              "prev_hash": prev["hash"]}
    del forged["seq"]
    forged["hash"] = event_hash(prev["hash"], forged) if rehash else "f" * 64
    return forged


def append_made_up(conn: Connection) -> tuple[int, int]:
    conn.execute(insert(audit_events).values(**_forged(conn, 1, 3, rehash=False)))
    return 1, 4


def append_rehashed(conn: Connection) -> tuple[int, int]:
    """Two correctly chained forged events: the request's recorded head betrays them."""
    conn.execute(insert(audit_events).values(**_forged(conn, 1, 3, rehash=True)))
    conn.execute(insert(audit_events).values(**_forged(conn, 1, 4, rehash=True)))
    return 1, 4


def swap_payloads(conn: Connection) -> tuple[int, int]:
    """Exchange the payloads of request C's two notes."""
    two, three = event(conn, 3, 2), event(conn, 3, 3)
    conn.execute(update(audit_events).where(where(3, 2)).values(payload=three["payload"]))
    conn.execute(update(audit_events).where(where(3, 3)).values(payload=two["payload"]))
    return 3, 2


def change_document(conn: Connection) -> tuple[int, int]:
    """Who approved, rewritten in the request's document with no event."""
    doc = conn.execute(select(requests.c.document).where(requests.c.id == 1)).scalar_one()
    conn.execute(update(requests).where(requests.c.id == 1).values(document=doc.replace("Request A", "Request Z")))
    return 1, 3


def change_state(conn: Connection) -> tuple[int, int]:
    conn.execute(update(requests).where(requests.c.id == 2).values(state="approved"))
    return 2, 2


TAMPERS: list[Callable[[Connection], tuple[int, int]]] = [
    alter_payload, alter_actor, alter_state, delete_middle, cut_tail, cut_whole_request, append_made_up,
    append_rehashed, swap_payloads, change_document, change_state,
]


@pytest.mark.parametrize("tamper", TAMPERS, ids=[t.__name__ for t in TAMPERS])
def test_verify_names_the_first_broken_event(engine: Engine, clock: FixedClock,
                                             tamper: Callable[[Connection], tuple[int, int]]) -> None:
    build_history(engine, clock)
    drop_triggers(engine)
    with engine.begin() as conn:
        rid, rseq = tamper(conn)
    report = store(engine).verify()
    assert not report.ok
    assert (report.request_id, report.broken_rseq) == (rid, rseq), report
    assert f"request {rid}" in report.reason and str(rseq) in report.reason, report
    assert report == SqlStore(engine).verify()  # without the key: the same fault (it is in the chain)


# --- a knowing tamperer: re-hashes and moves the request's head; the checkpoint and the key betray it -----

def _rechain(conn: Connection, rid: int, rows: list[dict[str, Any]]) -> None:
    """Rewrite request ``rid``'s chain as ``rows`` (renumbered, re-hashed) and point its row at the new head,
    with the document hash of the row as it is — everything but the key."""
    conn.execute(delete(audit_events).where(audit_events.c.request_id == rid))
    prev = GENESIS
    row = conn.execute(select(requests).where(requests.c.id == rid)).one()
    for n, r in enumerate(rows, start=1):
        r = {k: v for k, v in r.items() if k != "seq"}
        r.update(rseq=n, prev_hash=prev)
        if n == len(rows):
            r["doc"] = doc_hash(row.state, row.version, row.document)
        r["hash"] = prev = event_hash(prev, r)
        conn.execute(insert(audit_events).values(**r))
    conn.execute(update(requests).where(requests.c.id == rid).values(head_seq=len(rows), head_hash=prev))


def _chain_rows(conn: Connection, rid: int) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(select(audit_events).where(audit_events.c.request_id == rid)
                                                   .order_by(audit_events.c.rseq))]


def rehashed_edit(conn: Connection) -> tuple[int, int, str]:
    rows = _chain_rows(conn, 1)
    rows[1]["actor"] = "mallory@example.org"
    _rechain(conn, 1, rows)
    return 1, 3, "not the one checkpoint 1 signed"


def delete_and_renumber(conn: Connection) -> tuple[int, int, str]:
    rows = _chain_rows(conn, 1)
    del rows[1]
    _rechain(conn, 1, rows)
    return 1, 3, "events from 3 on are missing"


def truncate_tail(conn: Connection) -> tuple[int, int, str]:
    """Request C's newest event deleted and its head moved back: no hash knowledge needed."""
    rows = _chain_rows(conn, 3)
    last = rows[-2]
    conn.execute(delete(audit_events).where(where(3, 3)))
    conn.execute(update(requests).where(requests.c.id == 3).values(head_seq=2, head_hash=last["hash"]))
    return 3, 3, "events from 3 on are missing"


def forged_append_after_checkpoint(conn: Connection) -> tuple[int, int, str]:
    """A forged approval appended after the latest checkpoint, chained, with the head moved: only the key's
    HMAC on the head (which the tamperer cannot compute) betrays it."""
    forged = _forged(conn, 1, 3, rehash=True)
    conn.execute(insert(audit_events).values(**forged))
    conn.execute(update(requests).where(requests.c.id == 1).values(head_seq=4, head_hash=forged["hash"]))
    return 1, 4, "not sealed with the audit key"


def replaced_checkpoint(conn: Connection) -> tuple[int, int | None, str]:
    """A rehashed edit and the checkpoint re-signed to match, with the tamperer's own key."""
    rehashed_edit(conn)
    heads = [(int(i), int(c), str(h)) for i, c, h in conn.execute(select(requests.c.id, requests.c.head_seq,
                                                                         requests.c.head_hash).order_by(requests.c.id))]
    mallory = Ed25519PrivateKey.generate()
    forged = cps.make(mallory, 1, "2026-01-01T00:00:00+00:00", heads, 8, None)
    conn.execute(update(audit_checkpoints).where(audit_checkpoints.c.n == 1)
                 .values(body=forged.body, heads=forged.heads, signature=forged.signature))
    return 0, None, "signature does not verify"


KNOWING = [rehashed_edit, delete_and_renumber, truncate_tail, forged_append_after_checkpoint, replaced_checkpoint]


@pytest.mark.parametrize("tamper", KNOWING, ids=[t.__name__ for t in KNOWING])
def test_a_knowing_tamperer_is_caught_by_the_signed_checkpoint_and_the_key(
        engine: Engine, clock: FixedClock, tamper: Callable[[Connection], tuple[int, int | None, str]]) -> None:
    build_history(engine, clock)
    assert store(engine).checkpoint(clock.now()) is not None
    drop_triggers(engine)
    with engine.begin() as conn:
        rid, rseq, words = tamper(conn)
    report = store(engine).verify()
    assert not report.ok and words in report.reason, report
    if rid:
        assert (report.request_id, report.broken_rseq) == (rid, rseq), report
    else:
        assert report.checkpoint == 1, report


def test_an_older_checkpoint_that_is_not_a_prefix_of_the_next_is_caught(engine: Engine, clock: FixedClock) -> None:
    """A rehashed edit made between two checkpoints: the second (written by the unaware application after
    another change) signs the rewritten head, which is not the head the first one signed."""
    build_history(engine, clock)
    s = store(engine)
    s.checkpoint(clock.now())
    drop_triggers(engine)
    with engine.begin() as conn:
        rehashed_edit(conn)
    Service(s, clock).add_note(2, "a later, honest change", ACTOR)
    assert s.checkpoint(clock.now()) is not None
    report = s.verify()
    assert not report.ok and report.checkpoint == 2 and "not a prefix" in report.reason, report
    assert report.request_id == 1


def test_an_untouched_history_verifies_with_checkpoints(engine: Engine, clock: FixedClock) -> None:
    build_history(engine, clock)
    s = store(engine)
    first = s.checkpoint(clock.now())
    assert first is not None and s.checkpoint(clock.now()) is None  # nothing changed: nothing signed
    drive_to(Service(s, clock), "acknowledged")
    second = s.checkpoint(clock.now())
    assert second is not None and cps.body_of(second)["prev"] == cps.digest(first.body)
    report = s.verify()
    assert report.ok and report.broken_seq is None and report.checkpoints_checked == 2
    assert (report.events_checked, report.requests_checked) == (8 + 14, 4)
    # another key is not the one that signed them
    other = SqlStore(engine, signing_key=Ed25519PrivateKey.generate()).verify()
    assert not other.ok and other.checkpoint == 1 and "signature" in other.reason


def test_dropping_the_triggers_alone_breaks_nothing(engine: Engine, clock: FixedClock) -> None:
    build_history(engine, clock)
    drop_triggers(engine)
    assert store(engine).verify().ok


def test_parallel_verification_finds_what_the_serial_walk_finds(engine: Engine, clock: FixedClock,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    build_history(engine, clock)
    store(engine).checkpoint(clock.now())
    monkeypatch.setattr(audit, "PARALLEL_FROM", 1)
    monkeypatch.setattr(audit, "CHUNK_EVENTS", 2)
    mac = cps.mac_key(KEY)
    public = cps.public_hex(KEY)
    assert audit.verify(engine, public, mac, workers=2) == audit.verify(engine, public, mac, workers=1)
    assert audit.verify(engine, public, mac, workers=2).ok
    drop_triggers(engine)
    with engine.begin() as conn:
        swap_payloads(conn)
        alter_payload(conn)
    serial = audit.verify(engine, public, mac, workers=1)
    assert not serial.ok and (serial.request_id, serial.broken_rseq) == (2, 2)
    assert audit.verify(engine, public, mac, workers=2) == serial


# --- the command line ------------------------------------------------------------------------------------

def _cli(home: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LDFLOW_DATABASE_URL": url, "LDFLOW_HOME": str(home), "PYTHONPATH": str(ROOT),
           "LDFLOW_AUDIT_SIGNING_KEY": bytes(range(32)).hex()}
    script = Path(sys.executable).parent / "ldflow"  # the installed console script, as a user runs it
    assert script.is_file(), f"no console script at {script}: install the project (make .venv/.installed-stamp)"
    return subprocess.run([str(script), *args], cwd=home.parent, env=env, capture_output=True, text=True,
                          timeout=120)


def test_ldflow_audit_commands_checkpoint_export_and_verify_a_bundle_offline(
        sqlite_url: str, clock: FixedClock, tmp_path: Path) -> None:
    from connectors.db.engine import make_engine

    engine = make_engine(sqlite_url)
    build_history(engine, clock)
    home = tmp_path / "home"
    key = _cli(home, sqlite_url, "audit", "key")
    assert key.returncode == 0 and key.stdout.strip() == cps.public_hex(KEY), key.stderr
    signed = _cli(home, sqlite_url, "audit", "checkpoint")
    assert signed.returncode == 0 and "checkpoint 1 signed: 8 events in 3 requests" in signed.stdout, signed.stderr
    again = _cli(home, sqlite_url, "audit", "checkpoint")
    assert "nothing to sign" in again.stdout
    ok = _cli(home, sqlite_url, "audit", "verify")
    assert ok.returncode == 0 and "8 events, 3 requests, 1 signed checkpoint checked" in ok.stdout, ok.stderr
    bundle = tmp_path / "audit.jsonl"
    exported = _cli(home, sqlite_url, "audit", "export", "-o", str(bundle))
    assert exported.returncode == 0 and "exported 8 events and 1 signed checkpoint" in exported.stderr
    assert bundle.stat().st_mode & 0o077 == 0
    engine.dispose()
    offline = _cli(home, "sqlite:////nonexistent/none.db", "audit", "verify", "--bundle", str(bundle),
                   "--key", cps.public_hex(KEY))
    assert offline.returncode == 0 and "audit bundle ok: 8 events" in offline.stdout, offline.stdout + offline.stderr
    # a rehashed edit inside the bundle: the signed checkpoint no longer matches
    lines = bundle.read_text().splitlines()
    import json

    rows = [json.loads(line) for line in lines]
    chain = [r["event"] for r in rows if "event" in r and r["event"][0] == 1]
    chain[1][7] = "mallory@example.org"
    prev = GENESIS
    for e in chain:
        e[11] = prev
        e[12] = prev = event_hash(prev, dict(zip((*audit.FIELDS,), e[:11], strict=True)))
    bundle.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    broken = _cli(home, "sqlite:////nonexistent/none.db", "audit", "verify", "--bundle", str(bundle))
    assert broken.returncode == 6, broken.stdout + broken.stderr
    assert "request 1 event 3" in broken.stderr and "Traceback" not in broken.stderr, broken.stderr
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("not json\n")
    refused = _cli(home, "sqlite:////nonexistent/none.db", "audit", "verify", "--bundle", str(garbage))
    assert refused.returncode == 2 and "bundle" in refused.stderr and "Traceback" not in refused.stderr


def test_ldflow_audit_verify_reports_the_broken_event(sqlite_url: str, clock: FixedClock, tmp_path: Path) -> None:
    from connectors.db.engine import make_engine

    engine = make_engine(sqlite_url)
    build_history(engine, clock)
    home = tmp_path / "home"
    ok = _cli(home, sqlite_url, "audit", "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok" in ok.stdout
    drop_triggers(engine)
    with engine.begin() as conn:
        alter_payload(conn)
    engine.dispose()
    broken = _cli(home, sqlite_url, "audit", "verify")
    assert broken.returncode == 6
    output = broken.stdout + broken.stderr
    assert "request 2 event 2" in output and "Traceback" not in output, output
