"""Migration 0009_audit_chains: a 0006-era database (one global chain, seeded with raw SQL as that schema
had it) is verified with the old algorithm, re-chained per request with its history intact — or, when
its chain is broken, refused with the broken event named and nothing changed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text

from connectors.db import schema
from connectors.db.engine import make_engine
from connectors.db.store import SqlStore
from connectors.testing import InMemoryStore
from flows.clock import FixedClock
from flows.service import Service
from tests.builders import ACTOR, T0, diagnosis_data, intake_data

OLD_FIELDS = ("seq", "request_id", "type", "trigger", "from_state", "to_state", "version", "actor", "at")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'old.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_empty_url")
    engine = make_engine(url)
    yield engine
    engine.dispose()


def old_hash(prev: str, row: dict[str, object]) -> str:
    """The 0006-era rule: sha256(prev ‖ [seq, request_id, …, at, payload]) over one global chain."""
    header = orjson.dumps([row[f] for f in OLD_FIELDS])
    return hashlib.sha256(prev.encode() + header[:-1] + b"," + str(row["payload"]).encode() + b"]").hexdigest()


def seed_0006(engine: Engine, *, break_at: int | None = None) -> list[dict[str, object]]:
    """Two requests with interleaved history, written as the 0006 schema stored them (documents made by
    the domain through the in-memory store). Returns the old events in seq order."""
    fake = InMemoryStore()
    service = Service(fake, FixedClock(T0))
    a = service.submit(intake_data(title="Old A"), ACTOR).id
    b = service.submit(intake_data(title="Old B"), ACTOR).id
    service.diagnose(a, diagnosis_data(), ACTOR)
    service.add_note(b, "from before the upgrade", ACTOR)
    service.add_note(a, "another one", ACTOR)
    records = sorted(fake.iter_history(), key=lambda r: r.seq)
    schema.upgrade(engine, "0006_web_users")
    prev, events, head = "0" * 64, [], {}
    for r in records:
        row: dict[str, object] = {"seq": r.seq, "request_id": r.request_id, "type": r.type, "trigger": r.trigger,
                                  "from_state": r.from_state, "to_state": r.to_state, "version": r.version,
                                  "actor": r.actor, "at": r.at, "payload": orjson.dumps(
                                      r.payload, option=orjson.OPT_SORT_KEYS).decode()}
        row["prev_hash"] = prev
        row["hash"] = prev = old_hash(prev, row)
        if break_at == r.seq:
            row["actor"] = "mallory@example.org"  # edited after hashing: the old chain is broken here
        events.append(row)
        head[r.request_id] = r.seq
    with engine.begin() as conn:
        for rid in (a, b):
            req = fake.get(rid)
            conn.execute(text(
                "INSERT INTO requests (id, title, state, version, requester_email, sponsor_email, created_at, "
                "updated_at, head_seq, document) VALUES (:id, :title, :state, :version, :req, :spo, :c, :u, :h, :d)"),
                {"id": rid, "title": req.intake.title, "state": req.state.value, "version": req.version,
                 "req": req.intake.requester.email, "spo": req.intake.sponsor.email, "c": req.created_at,
                 "u": req.updated_at, "h": head[rid], "d": req.model_dump_json(exclude={"id", "version"})})
        for row in events:
            conn.execute(text(
                "INSERT INTO audit_events (seq, request_id, type, trigger, from_state, to_state, version, actor, at, "
                "payload, prev_hash, hash) VALUES (:seq, :request_id, :type, :trigger, :from_state, :to_state, "
                ":version, :actor, :at, :payload, :prev_hash, :hash)"), row)
    return events


def test_an_0006_database_is_rechained_per_request_with_its_history_intact(empty_engine: Engine) -> None:
    old = seed_0006(empty_engine)
    assert schema.upgrade(empty_engine) == schema.HEAD
    store = SqlStore(empty_engine, signing_key=Ed25519PrivateKey.generate())
    for rid in (1, 2):
        mine = [e for e in old if e["request_id"] == rid]
        history = store.history(rid)
        assert [(h.seq, h.type, h.actor, h.at, h.version) for h in history] == [
            (e["seq"], e["type"], e["actor"], e["at"], e["version"]) for e in mine]  # the same events, in order
        assert [h.rseq for h in history] == list(range(1, len(mine) + 1))
        assert history[0].prev_hash == "0" * 64
    assert SqlStore(empty_engine).verify().ok  # every chain links and matches its request's row
    # The migration has no key: its heads carry no HMAC until a checkpoint vouches for them (the app
    # signs one right after migrating: flows.bootstrap).
    unsealed = store.verify()
    assert not unsealed.ok and "not sealed" in unsealed.reason
    assert schema.unsealed_by_migration("0006_web_users") and not schema.unsealed_by_migration(None)
    assert store.checkpoint(T0) is not None
    assert store.verify().ok
    service = Service(store, FixedClock(T0))
    service.add_note(1, "after the upgrade", ACTOR)  # the next write seals the head with the key
    assert [h.seq for h in store.history(1)][-1] > max(int(str(e["seq"])) for e in old)
    report = store.verify()
    assert report.ok and report.events_checked == len(old) + 1 and report.checkpoints_checked == 1, report


def test_a_broken_0006_chain_is_refused_and_left_as_it_was(empty_engine: Engine) -> None:
    seed_0006(empty_engine, break_at=3)
    with empty_engine.connect() as conn:
        before = [tuple(r) for r in conn.execute(text("SELECT * FROM audit_events ORDER BY seq"))]
    with pytest.raises(schema.MigrationRefused) as info:
        schema.upgrade(empty_engine)
    assert "audit chain broken at event 3" in str(info.value) and "not migrating" in str(info.value)
    assert schema.current_revision(empty_engine) == "0006_web_users"
    with empty_engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(text("SELECT * FROM audit_events ORDER BY seq"))] == before
