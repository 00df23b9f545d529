"""Where the report's chart marks go (connectors/email/charts.py): on one scale, inside the plot, in order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.email.charts import PLOT_LEFT, PLOT_RIGHT, result_chart


def test_marks_keep_the_order_of_their_values_and_stay_inside_the_plot() -> None:
    c = result_chart({"baseline": 18.0, "result": 21.5, "target": 24.0})
    assert c is not None
    assert PLOT_LEFT < c["baseline"] < c["result"] < c["target"] < PLOT_RIGHT
    assert c["rising"] is True and c["band"] is None


def test_a_falling_result_and_a_range_target() -> None:
    c = result_chart({"baseline": 140.0, "result": 90.0, "target": None, "target_low": 60.0, "target_high": 100.0})
    assert c is not None and c["rising"] is False and c["target"] is None
    low, high = c["band"]
    assert low < c["result"] < high < c["baseline"]


def test_nothing_to_draw_without_a_number_and_equal_values_are_centred() -> None:
    assert result_chart({"baseline": None, "result": None, "target": 3.0}) is None
    c = result_chart({"baseline": 5.0, "result": 5.0, "target": 5.0})
    assert c is not None and c["baseline"] == c["result"] == c["target"] == pytest.approx((PLOT_LEFT + PLOT_RIGHT) / 2)


finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)


@given(finite, st.one_of(st.none(), finite), finite)
def test_every_mark_is_inside_the_plot(baseline: float, result: float | None, target: float) -> None:
    c = result_chart({"baseline": baseline, "result": result, "target": target})
    assert c is not None
    for mark in (c["baseline"], c["result"], c["target"]):
        assert mark is None or PLOT_LEFT - 0.1 <= mark <= PLOT_RIGHT + 0.1
