"""Analytics: the SQL aggregates (connectors/db/analytics.py) against walking the same events
(states.analytics.walk, the oracle), on SQLite and PostgreSQL, over the hand-built history."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine

from connectors.db import analytics
from connectors.db.store import SqlStore
from flows.clock import FixedClock
from flows.service import Service
from states.analytics import walk
from states.analytics_figures import Filter, figures, figures_of
from states.analytics_summary import Summary, summarise
from tests import analytics_history
from tests.builders import T0
from tests.integration.test_migrations import empty_engine as empty_engine  # the fixture
from tests.unit.test_analytics import EXPECTED, check


def test_sql_tracks_equal_the_walk_and_the_known_answers(engine: Engine) -> None:
    store = SqlStore(engine)
    clock = FixedClock(T0)
    ids = analytics_history.build(Service(store, clock), clock)
    walked = walk(list(store.iter_history()))
    computed = analytics.tracks(engine)  # the aggregates, no cache
    assert store.analytics_tracks() == computed  # through the cache: built
    assert store.analytics_tracks() == computed  # through the cache: read back
    assert [t.request_id for t in computed] == sorted(ids.values())
    for sql, oracle in zip(computed, walked, strict=True):
        assert sql == oracle, sql.request_id
    check(figures(computed), ids, EXPECTED)
    assert figures(computed, Filter(sponsor="sam.sponsor@example.org")) == figures(
        walked, Filter(sponsor="sam.sponsor@example.org"))
    assert store.audit_head() == len(list(store.iter_history()))  # grows with every commit, whatever its seq
    # the incremental refresh: only the requests with events after `since`, the same tracks
    since = max(e.seq for e in store.iter_history() if e.request_id == ids["waiting"])
    recent = store.analytics_tracks(since=since)
    assert [t.request_id for t in recent] == [ids["rerouted"]]
    assert recent == [t for t in walked if t.request_id == ids["rerouted"]]


def test_an_amended_sponsor_is_the_listing_sponsor(engine: Engine) -> None:
    """The oracle found it: SqlStore kept the intake's first sponsor in ``requests.sponsor_email``
    (and title, requester) after an amendment, so ``list --sponsor`` missed the new one."""
    from connectors.ports import ListFilter
    from tests.analytics_history import PAT, QUINN

    store = SqlStore(engine)
    clock = FixedClock(T0)
    ids = analytics_history.build(Service(store, clock), clock)
    assert [r.id for r in store.list(ListFilter(sponsor=QUINN))[0]] == [ids["amended"]]
    assert store.list(ListFilter(sponsor=PAT))[0] == []


def test_the_track_cache_recomputes_only_what_moved_on(engine: Engine) -> None:
    from sqlalchemy import text

    from tests.builders import ACTOR, reason_data

    store = SqlStore(engine)
    clock = FixedClock(T0)
    service = Service(store, clock)
    ids = analytics_history.build(service, clock)
    store.analytics_tracks()
    with engine.connect() as conn:
        before = dict(conn.execute(text("SELECT request_id, track FROM analytics_tracks")).all())
    service.reopen(ids["amended"], reason_data("back"), ACTOR)
    after_tracks = store.analytics_tracks()
    assert after_tracks == walk(list(store.iter_history()))
    with engine.connect() as conn:
        after = dict(conn.execute(text("SELECT request_id, track FROM analytics_tracks")).all())
        heads = dict(conn.execute(text("SELECT r.id, a.head_seq = r.head_seq FROM requests r "
                                       "JOIN analytics_tracks a ON a.request_id = r.id")).all())
    assert {k for k in after if after[k] != before[k]} == {ids["amended"]}
    assert all(heads.values())


def test_a_0006_database_upgrades_and_its_requests_get_tracks(empty_engine: Engine) -> None:
    """Migration 0008 adds the track cache beside an existing database's rows, which stay as they were."""
    from sqlalchemy import inspect, text

    from connectors.db import schema
    from tests.integration.test_migration_audit_chains import old_hash

    schema.upgrade(empty_engine, "0006_web_users")
    assert "analytics_tracks" not in inspect(empty_engine).get_table_names()
    with empty_engine.begin() as conn:  # a 0006-era request and its submitted event, as that schema had them
        conn.execute(text("INSERT INTO requests (id, title, state, version, requester_email, sponsor_email, "
                          "created_at, updated_at, head_seq, document) VALUES (7, 'Old one', 'received', 1, "
                          "'a@example.org', 'b@example.org', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1, '{}')"))
        row: dict[str, object] = {"seq": 1, "request_id": 7, "type": "submitted", "trigger": None, "from_state": None,
                                  "to_state": None, "version": 1, "actor": "ops", "at": "2026-01-01T00:00:00.000000Z",
                                  "payload": '{"intake":{"sponsor":{"email":"b@example.org"}}}'}
        row.update(prev_hash="0" * 64, hash=old_hash("0" * 64, row))  # the 0006 global chain, intact
        conn.execute(text("INSERT INTO audit_events (seq, request_id, type, version, actor, at, payload, prev_hash, "
                          "hash) VALUES (:seq, :request_id, :type, :version, :actor, :at, :payload, :prev_hash, "
                          ":hash)"), row)
    assert schema.upgrade(empty_engine) == schema.HEAD
    store = SqlStore(empty_engine)
    assert [(t.request_id, t.sponsor, t.state) for t in store.analytics_tracks()] == [(7, "b@example.org",
                                                                                     "received")]
    assert store.analytics_tracks() == walk(list(store.iter_history()))


FILTERS = [Filter(), Filter(sponsor="sam.sponsor@example.org"), Filter(type="redirect"), Filter(type="tool_fix"),
           Filter(type="design"), Filter(date_from=date(2026, 4, 1)), Filter(date_to=date(2026, 3, 31)),
           Filter(date_from=date(2026, 3, 1), date_to=date(2026, 3, 31), sponsor="sam.sponsor@example.org"),
           Filter(sponsor="nobody@example.org")]


def test_the_sql_summary_equals_the_walked_tracks_summarised(engine: Engine) -> None:
    """The GROUP BY path (connectors/db/analytics_summary.py): per filter, the summary and every figure from
    it equal ``summarise`` over the walked tracks the filter keeps; with the owner filter's id list too."""
    store = SqlStore(engine)
    clock = FixedClock(T0)
    ids = analytics_history.build(Service(store, clock), clock)
    walked = walk(list(store.iter_history()))
    for flt in [*FILTERS, Filter(owner_ids=frozenset({ids["design"], ids["rerouted"]})), Filter(owner_ids=frozenset())]:
        oracle = summarise([t for t in walked if flt.keeps(t)])
        got = store.analytics_summary(flt)
        assert _canonical(got) == _canonical(oracle), flt
        assert figures_of(got, flt) == figures(walked, flt), flt
    check(figures_of(store.analytics_summary(Filter()), Filter()), ids, EXPECTED)


def _canonical(s: Summary) -> tuple[object, ...]:
    """A summary with its rows in one order (SQL returns groups in any order)."""
    return (s.requests, sorted(s.groups, key=repr), sorted(s.money, key=repr), sorted(s.outcomes, key=repr),
            dict(s.spreads))


def test_a_write_is_in_the_next_figures_never_a_stale_one(engine: Engine) -> None:
    """Both caches (the store's track rows, this process's figures) follow every committed write: the figures
    after a write equal those computed from scratch by walking the events."""
    from flows import analytics as query
    from tests.builders import ACTOR, reason_data

    store = SqlStore(engine)
    clock = FixedClock(T0)
    service = Service(store, clock)
    ids = analytics_history.build(service, clock)
    before = query.figures(store)
    assert query.figures(store) is before  # same head: the cached figures
    service.reopen(ids["amended"], reason_data("back"), ACTOR)
    after = query.figures(store)
    assert after != before and after == figures(walk(list(store.iter_history())))
    sponsor = query.figures(store, Filter(sponsor="sam.sponsor@example.org"))
    service.add_note(ids["waiting"], "called the sponsor", ACTOR)
    assert query.figures(store, Filter(sponsor="sam.sponsor@example.org")) is not sponsor  # a new head
    assert query.tracks(store) == walk(list(store.iter_history()))


def test_the_head_grows_with_an_event_committed_out_of_seq_order(engine: Engine) -> None:
    """With concurrent writers a smaller seq can commit after a larger one: the newest seq would not move,
    the number of events does, so the figures are computed again."""
    from sqlalchemy import text

    from flows import analytics as query

    store = SqlStore(engine)
    clock = FixedClock(T0)
    ids = analytics_history.build(Service(store, clock), clock)
    before = query.figures(store)
    newest = store.audit_head()
    with engine.begin() as conn:  # the late commit: an event below the newest seq (a gap left for it)
        top = conn.execute(text("SELECT max(seq) FROM audit_events")).scalar_one()
        rid = ids["waiting"]
        head = conn.execute(text("SELECT head_seq FROM requests WHERE id = :r"), {"r": rid}).scalar_one()
        conn.execute(text("INSERT INTO audit_events (seq, request_id, rseq, type, version, actor, at, doc, payload, "
                          "prev_hash, hash) VALUES (:s, :r, :n, 'cancelled', :n, 'x', '2026-05-01T00:00:00.000000Z', "
                          "'', '{}', :h, :h)"), {"s": top + 100, "r": rid, "n": head + 1, "h": "0" * 64})
        conn.execute(text("UPDATE requests SET head_seq = :n, state = 'cancelled' WHERE id = :r"),
                     {"n": head + 1, "r": rid})
    assert store.audit_head() == newest + 1
    with engine.begin() as conn:
        rid2 = ids["design"]
        head2 = conn.execute(text("SELECT head_seq FROM requests WHERE id = :r"), {"r": rid2}).scalar_one()
        conn.execute(text("INSERT INTO audit_events (seq, request_id, rseq, type, version, actor, at, doc, payload, "
                          "prev_hash, hash) VALUES (:s, :r, :n, 'note_added', :n, 'x', '2026-05-01T00:00:00.000000Z', "
                          "'', '{}', :h, :h)"), {"s": top + 50, "r": rid2, "n": head2 + 1, "h": "0" * 64})
        conn.execute(text("UPDATE requests SET head_seq = :n WHERE id = :r"), {"n": head2 + 1, "r": rid2})
    mid = query.figures(store)
    assert store.audit_head() == newest + 2 and mid is not before
    assert mid == figures(walk(list(store.iter_history())))
