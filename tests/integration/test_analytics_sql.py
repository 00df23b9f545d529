"""Analytics: the SQL aggregates (connectors/db/analytics.py) against walking the same events
(states.analytics.walk, the oracle), on SQLite and PostgreSQL, over the hand-built history."""

from __future__ import annotations

from sqlalchemy import Engine

from connectors.db.store import SqlStore
from flows.clock import FixedClock
from flows.service import Service
from states.analytics import walk
from states.analytics_figures import Filter, figures
from tests import analytics_history
from tests.builders import T0
from tests.unit.test_analytics import EXPECTED, check


def test_sql_tracks_equal_the_walk_and_the_known_answers(engine: Engine) -> None:
    store = SqlStore(engine)
    clock = FixedClock(T0)
    ids = analytics_history.build(Service(store, clock), clock)
    walked = walk(list(store.iter_history()))
    computed = store.analytics_tracks()
    assert [t.request_id for t in computed] == sorted(ids.values())
    for sql, oracle in zip(computed, walked, strict=True):
        assert sql == oracle, sql.request_id
    check(figures(computed), ids, EXPECTED)
    assert figures(computed, Filter(sponsor="sam.sponsor@example.org")) == figures(
        walked, Filter(sponsor="sam.sponsor@example.org"))
    assert store.audit_head() == max(e.seq for e in store.iter_history())
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
