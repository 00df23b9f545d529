"""Migration 0011_sla_clocks on a database that holds requests: the SLA clock summary and the owners'
names are backfilled with exactly what today's store writes with every event, the rest of the rows is
untouched, and the SLA clocks read from the migrated rows equal the walk over each history."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from connectors.db import schema
from connectors.db.engine import make_engine
from connectors.db.store import SqlStore
from flows import sla
from flows.clock import FixedClock
from flows.service import Service
from states import sla as rules
from tests.builders import ACTOR, T0, drive_to, intake_data, reason_data
from tests.integration.old_schema import seed_old

SUMMARY = "id, sla_entries, owner_names"
KEPT = "id, title, state, version, requester_email, sponsor_email, updated_at, head_seq, head_hash, document"


def _make(store: SqlStore) -> None:
    clock = FixedClock(T0)
    service = Service(store, clock)
    service.submit(intake_data(title="Waiting"), ACTOR)  # 1: its diagnose clock runs
    clock.advance(timedelta(days=3))
    drive_to(service, "delivered")  # 2: owners from the plan
    clock.advance(timedelta(days=2))
    rid = drive_to(service, "declined").id  # 3: declined, re-opened, noted
    service.reopen(rid, reason_data("budget back"), ACTOR)
    service.add_note(rid, "asked again", ACTOR)


def _select(engine: Engine, columns: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT {columns} FROM requests ORDER BY id"))]


def test_the_backfill_writes_what_the_store_writes(tmp_path: Path) -> None:
    old = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    seed_old(old, "0010_analytics_speed", tmp_path / "scratch.db", _make)
    kept = _select(old, KEPT)
    assert schema.upgrade(old, "0011_sla_clocks") == "0011_sla_clocks"
    assert _select(old, KEPT) == kept
    scratch = make_engine(f"sqlite:///{tmp_path / 'scratch.db'}")
    migrated = _select(old, SUMMARY)
    assert migrated == _select(scratch, SUMMARY) and len(migrated) == 3
    assert all(entries for _, entries, _ in migrated)

    store = SqlStore(old)
    policy = sla.policy_from(rules.DEFAULT_POLICY)
    now = T0 + timedelta(days=30)
    got = sla.clocks(store, policy, now, open_only=False)
    assert {i: c.breaches for i, c in got.items()} == {
        rid: rules.breaches(rid, rules.entries(store.history(rid)), policy.rules, policy.calendar, now)
        for rid in (1, 2, 3)}
    assert any(b.running for b in got[1].breaches)
    assert store.sla_summaries([2])[0].names == {"olga.owner@example.org": "Olga Owner"}
    old.dispose()
    scratch.dispose()
