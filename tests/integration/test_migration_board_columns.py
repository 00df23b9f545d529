"""Migration 0007_board_columns on a database that holds requests: the card columns are backfilled
with exactly what today's store writes on a save, the rest of the rows is untouched, and the board
reads the migrated rows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from connectors.db import schema
from connectors.db.engine import make_engine
from connectors.db.store import SqlStore
from connectors.ports import BoardQuery
from flows.clock import FixedClock
from flows.service import Service
from states.lifecycle import State
from tests.builders import ACTOR, T0, drive_to, intake_data
from tests.integration.old_schema import seed_old

CARD = "id, in_state_since, owners, next_action, missing"
KEPT = "id, title, state, version, requester_email, sponsor_email, created_at, updated_at, head_seq, document"


def _make(store: SqlStore) -> None:
    clock = FixedClock(T0)
    service = Service(store, clock)
    service.submit(intake_data(), ACTOR)  # 1: received since T0
    clock.advance(timedelta(days=3))
    drive_to(service, "delivered")  # 2: delivered at T0 + 3 days, owners from the plan
    clock.advance(timedelta(days=2))
    service.add_note(2, "no transition: the state's age stays", ACTOR)


def _select(engine: Engine, columns: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT {columns} FROM requests ORDER BY id"))]


def test_the_backfill_writes_what_the_store_writes(tmp_path: Path) -> None:
    old = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    seed_old(old, "0006_web_users", tmp_path / "scratch.db", _make)
    with old.begin() as conn:  # a row whose document no longer reads: left without card facts
        conn.execute(text(f"INSERT INTO requests ({KEPT}) VALUES (9, 'Broken', 'received', 1, 'a@example.org', "
                          "'b@example.org', '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000', 0, '{}')"))
    kept = _select(old, KEPT)
    # this migration alone: the rows were copied from today's store, so their audit rows are not the
    # 0006 global chain that 0009_audit_chains verifies before it re-chains (tested in its own file)
    assert schema.upgrade(old, "0007_board_columns") == "0007_board_columns"
    assert _select(old, KEPT) == kept
    scratch = make_engine(f"sqlite:///{tmp_path / 'scratch.db'}")
    migrated = _select(old, CARD)
    assert migrated[:2] == _select(scratch, CARD)
    assert migrated[2][0] == 9 and migrated[2][2:] == (None, None, None)
    with old.connect() as conn:
        assert dict(conn.execute(text("SELECT state, n FROM request_counts")).all()) == {"received": 2, "delivered": 1}

    store = SqlStore(old)
    page = store.board(BoardQuery(order=[s.value for s in State]))
    assert page.counts == {"received": 2, "delivered": 1}
    by_id = {r.id: r for r in page.rows}
    assert by_id[1].next_action == "diagnose" and by_id[1].in_state_since == T0
    assert by_id[2].in_state_since == T0 + timedelta(days=3) and by_id[2].owners
    assert by_id[2].next_action == "measure" and by_id[2].missing
    assert by_id[9].next_action == "" and by_id[9].missing == ()
    old.dispose()
    scratch.dispose()
