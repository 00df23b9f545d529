"""Analytics figures on the hand-built history (tests/analytics_history.py), answers worked out by hand.

The same ``EXPECTED`` is checked on SQLite and PostgreSQL by tests/integration/test_analytics_sql.py,
where the SQL aggregates must also equal walking the events."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from connectors.testing import InMemoryStore
from flows.clock import FixedClock
from flows.service import Service
from states.analytics import ItemOutcome, Track, walk
from states.analytics_figures import Filter, figures, median_p90
from tests import analytics_history
from tests.analytics_history import QUINN, SAM
from tests.builders import T0

EXPECTED: dict[str, Any] = {
    "requests": 5,
    # counted once per stage ever reached: 2 re-opened requests keep their first pass's stages
    "funnel": {"received": (5, None), "diagnosed": (4, 0.8), "redirected": (2, 0.5), "designed": (2, 0.5),
               "delivered": (2, 0.6667), "measured": (1, 0.5), "acknowledged": (1, 1.0), "declined": (1, 0.2),
               "cancelled": (3, 0.6)},
    # routed: 1 design, 2 redirect, 5 design (re-routed after re-opening: its latest path)
    "redirects": {"routed": 3, "redirected": 1, "rate": 0.3333,
                  "by_kind": [{"kind": "tool_fix", "count": 1, "share": 1.0}],
                  "by_cause": [{"cause": "tools_adequate", "requests": 1, "redirected": 1, "rate": 1.0},
                               {"cause": "could_do_if_life_depended", "requests": 2, "redirected": 0,
                                "rate": 0.0}]},
    # days in each state, completed stays summed per request (2: received 1 d + 1 d after re-opening)
    "per_state": {"received": (4, 2.0, 2.0), "diagnosed": (4, 3.0, 4.0), "redirected": (2, 1.5, 2.0),
                  "designed": (1, 2.0, 2.0), "delivered": (2, 46.0, 90.0), "measured": (1, 0.0, 0.0),
                  "cancelled": (2, 1.0, 1.0)},
    "plan_approval": {"n": 3, "median": 2.0, "p90": 2.0},
    "delivery_to_last_result": {"n": 1, "median": 90.0, "p90": 90.0},  # delivered 9 March, P90D on 7 June
    "trend": [("2026-03", 4, 2, 2, 2, 1, 1, 3, 0.3333), ("2026-04", 1, 0, 0, 0, 0, 0, 0, None)],
    "measurement": {"scheduled": 6, "sent": 0, "answered": 3, "response_rate": 1.0, "missed": 0,
                    "needs_review": 0, "superseded": 0, "delivered_with_checkpoints": 1, "all_closed": 1,
                    "all_closed_share": 1.0},
    # m1 (level 3): 71 against 75 from 62, more than half the way: partly met; m2 (level 1) 71 ≥ 4.2: met
    "by_level": [("kirkpatrick", 1, "met"), ("kirkpatrick", 3, "partly_met")],
    "by_sponsor": {SAM: {"met": 1, "partly_met": 1}},
    # 9 points x 1000 not isolated (no isolation method); costs 8000
    "roi": [{"currency": "EUR", "requests": 1, "isolated_benefits": 0.0, "not_isolated_benefits": 9000.0,
             "costs": 8000.0, "isolated_roi_percent": -100.0}],
}


def check(got: dict[str, Any], ids: dict[str, int], expected: dict[str, Any]) -> None:
    assert got["requests"] == expected["requests"]
    assert {r["stage"]: (r["count"], r["conversion"]) for r in got["funnel"]} == expected["funnel"]
    redirects = dict(got["redirects"])
    assert redirects == expected["redirects"]
    assert {r["state"]: (r["n"], r["median"], r["p90"]) for r in got["cycle_days"]["per_state"]} \
        == expected["per_state"]
    assert got["cycle_days"]["plan_approval"] == expected["plan_approval"]
    assert got["cycle_days"]["delivery_to_last_result"] == expected["delivery_to_last_result"]
    keys = ("month", "received", "redirected", "designed", "delivered", "measured", "declined", "cancelled",
            "redirect_rate")
    assert [tuple(r[k] for k in keys) for r in got["trend"]] == expected["trend"]
    assert got["measurement"] == expected["measurement"]
    assert [(r["framework"], r["level"], next(o for o in ("met", "partly_met", "not_met", "worse") if r[o]))
            for r in got["outcomes"]["by_level"]] == expected["by_level"]
    assert {r["sponsor"]: {k: v for k, v in r.items() if k != "sponsor" and v}
            for r in got["outcomes"]["by_sponsor"]} == expected["by_sponsor"]
    assert got["roi"] == expected["roi"]
    assert got["sla_breaches"]["status"] in ("computed", "not computed")  # the SLA section: its own test


@pytest.fixture
def history() -> tuple[InMemoryStore, dict[str, int]]:
    store, clock = InMemoryStore(), FixedClock(T0)
    return store, analytics_history.build(Service(store, clock), clock)


def test_every_figure_on_the_hand_built_history(history: tuple[InMemoryStore, dict[str, int]]) -> None:
    store, ids = history
    got = figures(store.analytics_tracks())
    check(got, ids, EXPECTED)
    assert got["sla_breaches"]["status"] == "not computed"  # without a policy given: never faked


def test_tracks_follow_reopening_amending_and_cancelling(history: tuple[InMemoryStore, dict[str, int]]) -> None:
    store, ids = history
    tracks = {t.request_id: t for t in store.analytics_tracks()}
    amended = tracks[ids["amended"]]
    assert amended.sponsor == QUINN and amended.state == "cancelled" and amended.path == ""
    rerouted = tracks[ids["rerouted"]]
    assert rerouted.path == "design" and rerouted.redirect_kind == ""
    assert rerouted.reached == {"diagnosed", "redirected", "cancelled", "designed"}
    assert tracks[ids["redirect"]].reached == {"diagnosed", "redirected", "delivered", "cancelled", "declined"}
    assert tracks[ids["design"]].outcomes == (ItemOutcome("m1", "kirkpatrick", 3, "partly_met"),
                                             ItemOutcome("m2", "kirkpatrick", 1, "met"))
    # the figures come from the history only: a walk of each request's events gives the same tracks
    events = [e for rid in sorted(tracks) for e in store.history(rid)]
    assert walk(reversed(events)) == list(tracks.values())


def test_filters(history: tuple[InMemoryStore, dict[str, int]]) -> None:
    store, ids = history
    tracks = store.analytics_tracks()
    assert figures(tracks, Filter(sponsor=QUINN))["requests"] == 1
    assert figures(tracks, Filter(type="redirect"))["requests"] == 1
    assert figures(tracks, Filter(type="tool_fix"))["requests"] == 1
    assert figures(tracks, Filter(type="design"))["requests"] == 2
    assert figures(tracks, Filter(date_from=date(2026, 4, 1)))["requests"] == 1
    assert figures(tracks, Filter(date_to=date(2026, 3, 31)))["requests"] == 4
    only = figures(tracks, Filter(owner_ids=frozenset({ids["design"]})))
    assert only["requests"] == 1 and only["funnel"][-3]["count"] == 1  # acknowledged


def test_median_and_p90_by_nearest_rank() -> None:
    day = 86400.0
    assert median_p90([day * n for n in range(1, 11)]) == {"n": 10, "median": 5.5, "p90": 9.0}
    assert median_p90([day]) == {"n": 1, "median": 1.0, "p90": 1.0}
    assert median_p90([]) == {"n": 0, "median": None, "p90": None}


def test_an_empty_history() -> None:
    got = figures([])
    assert got["requests"] == 0 and got["redirects"]["rate"] is None and got["roi"] == []
    assert figures([Track(1, "2026-01-01T00:00:00Z", "a@x", "received", frozenset())])["funnel"][0]["count"] == 1


def test_the_cache_follows_the_audit_head(history: tuple[InMemoryStore, dict[str, int]]) -> None:
    from flows import analytics
    from tests.builders import ACTOR, reason_data

    store, ids = history
    before = analytics.figures(store)
    assert analytics.figures(store) is before  # same head: the cached figures
    clock = FixedClock(T0)
    Service(store, clock).reopen(ids["amended"], reason_data("Quinn found the budget"), ACTOR)
    after = analytics.figures(store)
    assert after is not before and after == figures(store.analytics_tracks())  # refreshed incrementally
    assert {r["stage"]: r["count"] for r in after["funnel"]}["cancelled"] == 3
    assert analytics.tracks(store) == store.analytics_tracks()
    assert [t.request_id for t in store.analytics_tracks(since=store.audit_head() - 1)] == [ids["amended"]]


def test_the_sla_section_counts_breached_and_near_clocks_from_the_history() -> None:
    """Under the built-in policy (diagnosed within 5 business days of receipt): a request left undiagnosed
    for two weeks breached (still running), one diagnosed the next day did not, one four business days
    old is near; the section is recomputed with the policy, never stored."""
    from datetime import timedelta

    from flows import analytics, sla
    from flows.clock import FixedClock
    from flows.service import Service
    from flows.settings import Settings
    from tests.builders import ACTOR, T0, diagnosis_data, intake_data

    store, clock = InMemoryStore(), FixedClock(T0)  # T0: a Monday
    service = Service(store, clock)
    late = service.submit(intake_data(title="Left waiting"), ACTOR).id
    quick = service.submit(intake_data(title="Diagnosed at once"), ACTOR).id
    clock.advance(timedelta(days=1))
    service.diagnose(quick, diagnosis_data(), ACTOR)
    clock.advance(timedelta(days=13))  # Monday two weeks on
    near = service.submit(intake_data(title="Four days old"), ACTOR).id
    clock.advance(timedelta(days=4))  # Friday: 4 of 5 business days for the newest (near: 80%)
    clocks = analytics.SlaClocks(sla.load_policy(Settings()), clock.now())
    got = analytics.sla_section([late, quick, near], store.history, clocks)
    assert got["status"] == "computed" and got["requests"] == 3 and got["requests_breached"] == 1
    diagnose = next(r for r in got["slas"] if r["sla"] == "diagnose")
    assert (diagnose["breached"], diagnose["running_breached"], diagnose["near"]) == (1, 1, 1)
    assert analytics.figures(store, None, clocks)["sla_breaches"] == got
