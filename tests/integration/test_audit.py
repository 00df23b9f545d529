"""Tamper evidence: the database refuses UPDATE/DELETE on the history, and ``verify`` catches a
tamperer who removed those triggers, naming the first broken event."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from connectors.db import audit
from connectors.db.store import SqlStore
from connectors.db.tables import audit_events
from flows.clock import FixedClock
from flows.service import Service
from tests.builders import ACTOR, diagnosis_data, drive_to, intake_data, plan_data

ROOT = Path(__file__).resolve().parents[2]


def build_history(engine: Engine, clock: FixedClock) -> dict[int, list[int]]:
    """Three requests with interleaved events; returns each request's seqs."""
    service = Service(SqlStore(engine), clock)
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
        rows = conn.execute(select(audit_events.c.seq, audit_events.c.request_id)).all()
    seqs: dict[int, list[int]] = {}
    for seq, rid in rows:
        seqs.setdefault(rid, []).append(seq)
    assert seqs == {a: [1, 3, 5], b: [2, 4], c: [6, 7, 8]}
    return seqs


def drop_triggers(engine: Engine) -> None:
    """What a tamperer with database access does first."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_events_no_update ON audit_events"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))


def row(conn: Connection, seq: int) -> dict[str, Any]:
    return dict(conn.execute(select(audit_events).where(audit_events.c.seq == seq)).one()._mapping)


# --- the database itself refuses -------------------------------------------------------------------------

@pytest.mark.parametrize("statement", [
    update(audit_events).where(audit_events.c.seq == 2).values(actor="mallory@example.org"),
    update(audit_events).values(payload="{}"),
    delete(audit_events).where(audit_events.c.seq == 3),
    delete(audit_events),
], ids=["update-one", "update-all", "delete-one", "delete-all"])
def test_the_database_refuses_to_change_history(engine: Engine, clock: FixedClock, statement: Any) -> None:
    build_history(engine, clock)
    before = SqlStore(engine).history(1)
    with pytest.raises(DBAPIError) as info, engine.begin() as conn:
        conn.execute(statement)
    assert "append-only" in str(info.value)
    assert SqlStore(engine).history(1) == before
    assert audit.verify(engine).ok


@pytest.mark.postgres
def test_postgres_refuses_truncate(pg_engine: Engine, clock: FixedClock) -> None:
    build_history(pg_engine, clock)
    with pytest.raises(DBAPIError) as info, pg_engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_events"))
    assert "append-only" in str(info.value)
    assert audit.count(pg_engine) == 8


# --- verify catches a tamperer who dropped the triggers ----------------------------------------------------

def alter_payload(conn: Connection) -> int:
    conn.execute(update(audit_events).where(audit_events.c.seq == 4)
                 .values(payload=audit.canonical_json({"text": "the sponsor approved the budget"})))
    return 4


def alter_actor(conn: Connection) -> int:
    conn.execute(update(audit_events).where(audit_events.c.seq == 3).values(actor="mallory@example.org"))
    return 3


def alter_state(conn: Connection) -> int:
    conn.execute(update(audit_events).where(audit_events.c.seq == 3).values(to_state="designed"))
    return 3


def delete_middle(conn: Connection) -> int:
    conn.execute(delete(audit_events).where(audit_events.c.seq == 5))
    return 5


def cut_tail(conn: Connection) -> int:
    """Delete the last two events (both of request C) from the end of the chain."""
    conn.execute(delete(audit_events).where(audit_events.c.seq >= 7))
    return 7


def cut_whole_request_tail(conn: Connection) -> int:
    """Delete every event of request C (the last three of the chain)."""
    conn.execute(delete(audit_events).where(audit_events.c.request_id == 3))
    return 6


def _shift_up(conn: Connection, after: int) -> None:
    """Make room for a row after ``after`` (two steps: the primary key is checked per row)."""
    conn.execute(update(audit_events).where(audit_events.c.seq > after).values(seq=audit_events.c.seq + 1000))
    conn.execute(update(audit_events).where(audit_events.c.seq > 1000).values(seq=audit_events.c.seq - 999))


def _forged(conn: Connection, after: int, *, rehash: bool) -> dict[str, Any]:
    prev = row(conn, after)
    forged = {**prev, "seq": after + 1, "type": "plan_approved", "trigger": None, "from_state": None,
              "to_state": None, "request_id": 1, "actor": "sam.sponsor@example.org",
              "payload": audit.canonical_json({"approver": "sam.sponsor@example.org", "comment": "ok"}),
              "prev_hash": prev["hash"]}
    forged["hash"] = audit.event_hash(prev["hash"], forged) if rehash else "f" * 64
    return forged


def insert_middle(conn: Connection) -> int:
    """A forged row after event 5 whose own hash is made up."""
    _shift_up(conn, 5)
    conn.execute(insert(audit_events).values(**_forged(conn, 5, rehash=False)))
    return 6


def insert_middle_rehashed(conn: Connection) -> int:
    """A forged row after event 5, hashed correctly: the next (real) event no longer links to it."""
    _shift_up(conn, 5)
    conn.execute(insert(audit_events).values(**_forged(conn, 5, rehash=True)))
    return 7


def insert_end(conn: Connection) -> int:
    conn.execute(insert(audit_events).values(**_forged(conn, 8, rehash=False)))
    return 9


def insert_end_rehashed(conn: Connection) -> int:
    """Two correctly chained forged rows at the end: only the request's recorded newest event betrays them."""
    conn.execute(insert(audit_events).values(**_forged(conn, 8, rehash=True)))
    conn.execute(insert(audit_events).values(**_forged(conn, 9, rehash=True)))
    return 9


def swap_rows(conn: Connection) -> int:
    """Exchange the contents of events 3 and 4 (everything but seq): a reordering."""
    three, four = row(conn, 3), row(conn, 4)
    for target, source in ((3, four), (4, three)):
        values = {k: v for k, v in source.items() if k != "seq"}
        conn.execute(update(audit_events).where(audit_events.c.seq == target).values(**values))
    return 3


def swap_payloads(conn: Connection) -> int:
    """Exchange only the payloads of the two notes of request C."""
    seven, eight = row(conn, 7), row(conn, 8)
    conn.execute(update(audit_events).where(audit_events.c.seq == 7).values(payload=eight["payload"]))
    conn.execute(update(audit_events).where(audit_events.c.seq == 8).values(payload=seven["payload"]))
    return 7


def rewrite_whole_chain(conn: Connection) -> int:
    """Delete event 4 and rehash every later event so that the chain itself links again."""
    conn.execute(delete(audit_events).where(audit_events.c.seq == 4))
    rows = [dict(r._mapping) for r in conn.execute(select(audit_events).order_by(audit_events.c.seq))]
    conn.execute(delete(audit_events))
    prev = audit.GENESIS
    for n, r in enumerate(rows, start=1):
        r.update(seq=n, prev_hash=prev)
        r["hash"] = prev = audit.event_hash(prev, r)
        conn.execute(insert(audit_events).values(**r))
    return 5  # request 1's recorded newest event (5) is now event 4


TAMPERS: list[Callable[[Connection], int]] = [
    alter_payload, alter_actor, alter_state, delete_middle, cut_tail, cut_whole_request_tail, insert_middle,
    insert_middle_rehashed, insert_end, insert_end_rehashed, swap_rows, swap_payloads, rewrite_whole_chain,
]


@pytest.mark.parametrize("tamper", TAMPERS, ids=[t.__name__ for t in TAMPERS])
def test_verify_names_the_first_broken_event(engine: Engine, clock: FixedClock,
                                             tamper: Callable[[Connection], int]) -> None:
    build_history(engine, clock)
    drop_triggers(engine)
    with engine.begin() as conn:
        expected = tamper(conn)
    report = SqlStore(engine).verify()
    assert not report.ok
    if tamper is rewrite_whole_chain:
        # The chain links again, but request 1 remembers its newest event as 5, which is gone.
        assert report.request_id == 1 and "newest event 5 is missing" in report.reason, report
    else:
        assert report.broken_seq == expected, report
        assert str(expected) in report.reason
    assert report == audit.verify(engine)


def test_an_untouched_chain_verifies(engine: Engine, clock: FixedClock) -> None:
    build_history(engine, clock)
    drive_to(Service(SqlStore(engine), clock), "acknowledged")
    report = audit.verify(engine)
    assert report.ok and report.broken_seq is None
    assert (report.events_checked, report.requests_checked) == (8 + 14, 4)


def test_dropping_the_triggers_alone_breaks_nothing(engine: Engine, clock: FixedClock) -> None:
    build_history(engine, clock)
    drop_triggers(engine)
    assert audit.verify(engine).ok


# --- the command line ------------------------------------------------------------------------------------

def test_ldflow_audit_verify_reports_the_broken_event(sqlite_url: str, clock: FixedClock, tmp_path: Path) -> None:
    from connectors.db.engine import make_engine

    engine = make_engine(sqlite_url)
    build_history(engine, clock)
    env = {**os.environ, "LDFLOW_DATABASE_URL": sqlite_url, "LDFLOW_HOME": str(tmp_path / "home"),
           "PYTHONPATH": str(ROOT)}
    script = Path(sys.executable).parent / "ldflow"  # the installed console script, as a user runs it
    assert script.is_file(), f"no console script at {script}: install the project (make .venv/.installed-stamp)"
    command = [str(script), "audit", "verify"]
    ok = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok" in ok.stdout
    drop_triggers(engine)
    with engine.begin() as conn:
        alter_payload(conn)
    engine.dispose()
    broken = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert broken.returncode != 0
    output = broken.stdout + broken.stderr
    assert "event 4" in output and "Traceback" not in output, output
