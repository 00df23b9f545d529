"""The pre-grouped path of the analytics figures (states/analytics_summary.py): the figures from a summary
equal the figures from the tracks, and the track cache's columns follow the lifecycle and the summary."""

from __future__ import annotations

from datetime import date

from connectors.db.tables import _STAY_COLUMNS, analytics_facts
from connectors.testing import InMemoryStore
from flows.clock import FixedClock
from flows.service import Service
from states.analytics import Track
from states.analytics_figures import Filter, figures, figures_of
from states.analytics_summary import CAUSE_BITS, SPREADS, STAGE_BITS, columns, group, names, p90_rank, summarise
from states.lifecycle import State
from tests import analytics_history
from tests.builders import T0


def test_the_cache_columns_are_the_summary_inputs_and_every_state() -> None:
    assert tuple(s.value for s in State) == _STAY_COLUMNS
    track = Track(1, "2026-01-01T00:00:00Z", "a@x", "received", frozenset())
    assert {c.name for c in analytics_facts.columns} == {"request_id", "head_seq", *columns(track)}
    assert set(SPREADS) == {*_STAY_COLUMNS, "plan_approval", "delivery_to_last_result"}


def test_bits_name_back_what_they_were_made_of() -> None:
    got = group(("2026-03", "redirect", "tool_fix", STAGE_BITS["diagnosed"] | STAGE_BITS["redirected"],
                 CAUSE_BITS["tools_adequate"], 1, 0), (3, 2, 2, 1, 1, 0, 0))
    assert got.reached == frozenset({"diagnosed", "redirected"}) and got.causes == ("tools_adequate",)
    assert (got.n, got.scheduled, got.missed, got.delivered_ckpt, got.all_closed) == (3, 2, 1, True, False)
    assert names(0, STAGE_BITS) == ()


def test_the_p90_rank_is_the_nearest_rank_in_whole_numbers() -> None:
    assert [p90_rank(n) for n in (1, 2, 9, 10, 11, 19, 20, 21)] == [1, 2, 9, 9, 10, 18, 18, 19]
    assert all(p90_rank(n) == (9 * n + 9) // 10 for n in range(1, 100_000))  # the SQL's rank


def test_figures_from_the_summary_equal_figures_from_the_tracks() -> None:
    store = InMemoryStore()
    clock = FixedClock(T0)
    ids = analytics_history.build(Service(store, clock), clock)
    tracks = store.analytics_tracks()
    for flt in (Filter(), Filter(type="design"), Filter(date_from=date(2026, 4, 1)),
                Filter(owner_ids=frozenset({ids["design"]})), Filter(sponsor="nobody@example.org")):
        kept = [t for t in tracks if flt.keeps(t)]
        assert figures_of(summarise(kept), flt) == figures(tracks, flt)
        assert store.analytics_summary(flt) == summarise(kept)
