"""Judging a result the way the plan says good is, and isolating the training's share of it.

* :func:`verdict` — met, partly met, not met or got worse, by the item's :class:`Direction`: the
  distance still to go (``shortfall``) is 0 when met; with a baseline, a result further from good
  than the baseline got worse, and one that closed at least half of the baseline's distance is
  partly met. Without a baseline an item is met or not met (ceilings and floors are judged alike).
* :func:`isolate` — the change in the item's units that the programme caused, by its
  :class:`Isolation` method (Phillips): control group, trend line, or estimate × confidence.

Pure functions; :mod:`states.results` puts them together per plan item and for the ROI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from states import wording
from states.measures import Direction, Isolation, IsolationMethod
from states.models import PlanItem, Target

# A result within this fraction of the target's scale counts as on it (float sums such as 0.1 + 0.2).
_TOLERANCE = 1e-9


class Outcome(StrEnum):
    MET = "met"
    PARTLY_MET = "partly_met"
    NOT_MET = "not_met"
    WORSE = "worse"
    NO_DATA = "no_data"


def direction_of(item: PlanItem) -> Direction:
    """The item's direction; for plans written before directions, ``decrease`` when the target is below
    the baseline and ``increase`` otherwise (how they were always judged)."""
    if item.direction is not None:
        return item.direction
    if item.baseline is not None and item.target.value is not None and item.target.value < item.baseline.value:
        return Direction.DECREASE
    return Direction.INCREASE


def shortfall(direction: Direction, target: Target, value: float) -> float:
    """How far ``value`` is from good (0 when it is good), in the item's units."""
    if direction == Direction.WITHIN:
        assert target.low is not None and target.high is not None
        return max(0.0, target.low - value, value - target.high)
    assert target.value is not None
    if direction in (Direction.INCREASE, Direction.AT_LEAST):
        return max(0.0, target.value - value)
    return max(0.0, value - target.value)


def verdict(direction: Direction, target: Target, baseline: float | None, value: float | None) -> Outcome:
    """Met, partly met (closed at least half of the baseline's distance), not met, got worse (further from
    good than the baseline), or no data. Without a baseline: met or not met."""
    if value is None:
        return Outcome.NO_DATA
    scale = max(1.0, *(abs(v) for v in (target.value, target.low, target.high) if v is not None))
    gap = shortfall(direction, target, value)
    if gap <= _TOLERANCE * scale:
        return Outcome.MET
    if baseline is None:
        return Outcome.NOT_MET
    before = shortfall(direction, target, baseline)
    if gap > before + _TOLERANCE * scale:
        return Outcome.WORSE
    if before > 0 and gap <= before / 2:
        return Outcome.PARTLY_MET
    return Outcome.NOT_MET


def sign(direction: Direction) -> float | None:
    """+1 when more is better, -1 when less is better, None for a range (no monetary benefit)."""
    if direction == Direction.WITHIN:
        return None
    return 1.0 if direction in (Direction.INCREASE, Direction.AT_LEAST) else -1.0


@dataclass(frozen=True)
class Isolated:
    """The programme's effect in the item's units (improvement positive), or None with the reason."""

    effect: float | None
    method: IsolationMethod
    note: str


def isolate(isolation: Isolation | None, direction: Direction, unit: str, baseline: float | None,
            value: float, comparison_value: float | None) -> Isolated:
    """The change the programme caused, by the item's isolation method; ``effect`` is None (and the note
    says why) when the method is ``none`` or its inputs are not all there."""
    s = sign(direction)
    method = isolation.method if isolation is not None else IsolationMethod.NONE
    if isolation is None or method == IsolationMethod.NONE or s is None:
        return Isolated(None, IsolationMethod.NONE, "not isolated from other causes")
    source = f" ({isolation.source})" if isolation.source else ""
    if method == IsolationMethod.TREND_LINE:
        assert isolation.expected_value is not None
        return Isolated((value - isolation.expected_value) * s, method,
                        f"trend line: {wording.quantity(isolation.expected_value, unit)} expected without the "
                        f"programme{source}")
    if baseline is None:
        return Isolated(None, method, f"{method.value.replace('_', ' ')} needs the item's baseline: not isolated")
    raw = (value - baseline) * s
    if method == IsolationMethod.ESTIMATE:
        assert isolation.share_percent is not None and isolation.confidence_percent is not None
        share, confidence = isolation.share_percent, isolation.confidence_percent
        return Isolated(raw * share / 100 * confidence / 100, method,
                        f"estimate: {wording.number(share)}% of the change attributed to the programme × "
                        f"{wording.number(confidence)}% confidence{source}")
    assert isolation.comparison_baseline is not None
    if comparison_value is None:
        return Isolated(None, method, "control group: the comparison group's result was not recorded with the "
                                      "result, so the change is not isolated")
    comparison = isolation.comparison_baseline
    return Isolated(raw - (comparison_value - comparison) * s, method,
                    f"control group: the comparison group went {wording.change(comparison, comparison_value, unit)}"
                    f"{source}; the effect is the trained group's change minus the comparison group's")


# --- in words (the report's templates, `ldflow show`) ----------------------------------------------

_COST_WORDS: Final = {"participants_time": "participants' time"}


def effect_sentence(result: Mapping[str, Any]) -> str:
    """How an item's change was isolated and what it is worth, in words ("" when there is nothing to say)."""
    if result.get("result") is None or not result.get("isolation"):
        return ""
    unit = result.get("unit") or ""
    if result.get("isolated"):
        text = f"the programme's effect: {wording.quantity(round(float(result['effect']), 4), unit)} " \
               f"({result.get('isolation_note')})"
        if result.get("monetary_benefit") is not None:
            text += f", worth {wording.money(result['monetary_benefit'], result.get('currency', ''))}"
        return text
    text = str(result.get("isolation_note") or "not isolated from other causes")
    if result.get("raw_benefit") is not None:
        text = f"{wording.money(result['raw_benefit'], result.get('currency', ''))} of benefit, {text}"
    return text


def roi_sentences(roi: Mapping[str, Any]) -> list[str]:
    """The ROI in sentences: the ratio and the percentage, what is and is not isolated, the cost lines."""
    currency = roi.get("currency", "")
    out = [f"Benefit-cost ratio {wording.number(roi.get('benefit_cost_ratio'))}, return on investment "
           f"{wording.number(roi.get('roi_percent'))}% ({wording.money(roi.get('benefits'), currency)} of benefits "
           f"for {wording.money(roi.get('costs'), currency)} invested)."]
    not_isolated = roi.get("not_isolated_items") or []
    if roi.get("isolated_benefits") is None:
        return out  # an ROI stored before isolation: nothing more is known
    if not not_isolated:
        out.append("The benefits are the programme's isolated effect, not the raw change.")
    elif roi.get("isolated_roi_percent") is None:
        out.append("Not isolated from other causes: the benefits are the raw change, which other causes may "
                   "have brought about too.")
    else:
        out.append(f"Of the benefits, {wording.money(roi.get('not_isolated_benefits'), currency)} "
                   f"({', '.join(not_isolated)}) is not isolated from other causes; on the isolated benefits alone "
                   f"({wording.money(roi.get('isolated_benefits'), currency)}) the return on investment is "
                   f"{wording.number(roi.get('isolated_roi_percent'))}%.")
    lines = roi.get("cost_lines") or []
    if lines:
        parts = [f"{_COST_WORDS.get(str(x.get('category')), str(x.get('category')).replace('_', ' '))}"
                 f"{' (' + str(x['description']) + ')' if x.get('description') else ''} "
                 f"{wording.money(x.get('amount'), x.get('currency') or currency)}" for x in lines]
        out.append(f"Fully loaded costs: {'; '.join(parts)}.")
    return out
