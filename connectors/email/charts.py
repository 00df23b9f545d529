"""Where the marks of the report's result charts go: one pure function, the SVG is in the templates.

A result's chart (``_report_chart.svg.j2``) is one horizontal scale with the baseline, the result and the
target (a band for a ``within`` target) on it and an arrow from the baseline to the result. This module
only places them: every value mapped onto the same plot range, padded so no mark sits on the edge, with
room left and right for the labels (the label of the lower mark reads to its left, the higher one to its
right, so the two never overlap however close the values are).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["HEIGHT", "WIDTH", "result_chart"]

WIDTH: Final = 600
HEIGHT: Final = 74
PLOT_LEFT: Final = 150.0
PLOT_RIGHT: Final = 450.0
_PAD: Final = 0.08  # of the values' span, on each side


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def result_chart(result: Mapping[str, Any]) -> dict[str, Any] | None:
    """The x positions of one result's marks (``None`` for a missing one), or ``None`` when the result has no
    number to draw (no result and no baseline)."""
    baseline, value = _number(result.get("baseline")), _number(result.get("result"))
    low, high = _number(result.get("target_low")), _number(result.get("target_high"))
    target = _number(result.get("target")) if low is None or high is None else None
    values = [v for v in (baseline, value, target, low, high) if v is not None]
    if baseline is None and value is None:
        return None
    lo, hi = min(values), max(values)
    span = hi - lo or max(abs(hi) * 0.1, 1.0)
    lo, hi = lo - span * _PAD, hi + span * _PAD
    if hi - lo < span * (1 + 2 * _PAD):  # all values equal: centre them
        lo, hi = lo - span / 2, hi + span / 2

    def x(v: float | None) -> float | None:
        return None if v is None else round(PLOT_LEFT + (v - lo) / (hi - lo) * (PLOT_RIGHT - PLOT_LEFT), 1)

    return {"width": WIDTH, "height": HEIGHT, "left": PLOT_LEFT, "right": PLOT_RIGHT,
            "baseline": x(baseline), "result": x(value), "target": x(target),
            "band": (x(low), x(high)) if low is not None and high is not None else None,
            "rising": value is None or baseline is None or value >= baseline}
