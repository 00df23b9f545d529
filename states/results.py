"""Measurement results: each plan item's latest result against its baseline and target, and the ROI.

Pure functions of the plan and the recorded checkpoints; ``measure`` stores what they give and
the results report (:mod:`states.report`) shows it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel

from states.checkpoints import Checkpoint
from states.models import MeasurementPlan, PlanItem


class Outcome(StrEnum):
    MET = "met"
    PARTLY_MET = "partly_met"
    NOT_MET = "not_met"
    NO_DATA = "no_data"


class ItemResult(BaseModel):
    item_id: str
    metric: str
    unit: str
    baseline: float | None
    target: float
    result: float | None
    outcome: Outcome
    monetary_benefit: float | None = None


class RoiSummary(BaseModel):
    benefits: float
    costs: float
    currency: str
    benefit_cost_ratio: float
    roi_percent: float


def outcome(baseline: float | None, target: float, value: float | None) -> Outcome:
    """Met, partly met (moved the right way from the baseline), not met, or no data."""
    if value is None:
        return Outcome.NO_DATA
    if baseline is None or baseline == target:
        return Outcome.MET if value >= target else Outcome.NOT_MET
    upward = target > baseline
    if (value >= target) if upward else (value <= target):
        return Outcome.MET
    if (value > baseline) if upward else (value < baseline):
        return Outcome.PARTLY_MET
    return Outcome.NOT_MET


def _item_result(item: PlanItem, checkpoints: Sequence[Checkpoint]) -> ItemResult:
    recorded = sorted((c for c in checkpoints if c.item_id == item.id and c.value is not None),
                      key=lambda c: c.due_at)
    value = recorded[-1].value if recorded else None
    baseline = item.baseline.value if item.baseline else None
    benefit = None
    if value is not None and baseline is not None and item.value_per_unit is not None:
        direction = 1.0 if item.target.value >= baseline else -1.0
        benefit = (value - baseline) * direction * item.value_per_unit
        if not math.isfinite(benefit):  # only for values stored before they were bounded
            benefit = None
    return ItemResult(item_id=item.id, metric=item.metric, unit=item.unit, baseline=baseline,
                      target=item.target.value, result=value, outcome=outcome(baseline, item.target.value, value),
                      monetary_benefit=benefit)


def compare(plan: MeasurementPlan | None,
            checkpoints: Sequence[Checkpoint]) -> tuple[list[ItemResult], RoiSummary | None]:
    """Each plan item's latest recorded result against its target; the Phillips ROI when the plan has
    costs and at least one item a monetary benefit."""
    if plan is None:
        return [], None
    results = [_item_result(item, checkpoints) for item in plan.items]
    benefits: float | None = None
    for r in results:
        if r.monetary_benefit is not None:
            benefits = (benefits or 0.0) + r.monetary_benefit
    costs = plan.costs
    if costs is None or benefits is None:
        return results, None
    # Inputs are bounded (states/validation.py: |benefit| <= 2e21 per item, costs >= 0.01), so these are
    # finite; a plan stored before the bounds could still overflow: then no ROI, never an inf.
    ratio = benefits / costs.program_cost
    percent = (benefits - costs.program_cost) / costs.program_cost * 100
    if not all(math.isfinite(x) for x in (benefits, ratio, percent)):
        return results, None
    return results, RoiSummary(
        benefits=round(benefits, 2), costs=costs.program_cost, currency=costs.currency,
        benefit_cost_ratio=round(ratio, 2), roi_percent=round(percent, 1))


def outcome_counts(results: Sequence[ItemResult]) -> dict[str, int]:
    """How many plan items met, partly met, did not meet their target (or have no data)."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome.value] = counts.get(r.outcome.value, 0) + 1
    return counts
