"""Measurement results: each plan item's latest result against what good is, and the ROI.

Pure functions of the plan and the recorded checkpoints; ``measure`` stores what they give and
the results report (:mod:`states.report`) shows it. The verdict follows the item's direction and
the monetary benefit uses the isolated effect where the plan says how to isolate it
(:mod:`states.evidence`); the ROI is (benefits − fully loaded costs) / costs, with the benefit that
is not isolated from other causes kept apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, Field

from states import wording
from states.checkpoints import Checkpoint
from states.evidence import Outcome, direction_of, isolate, sign, verdict
from states.models import MeasurementPlan, PlanItem

__all__ = ["ItemResult", "Outcome", "RoiSummary", "compare", "outcome_counts"]


class ItemResult(BaseModel):
    item_id: str
    metric: str
    unit: str
    baseline: float | None
    target: float | None
    result: float | None
    outcome: Outcome
    monetary_benefit: float | None = None  # the benefit the ROI counts: isolated when ``isolated``, else raw
    # Fields below were added with directions and isolation; results stored before them read the defaults.
    direction: str = ""
    guardrail: bool = False
    target_low: float | None = None
    target_high: float | None = None
    goal: str = ""  # what good is, in words ("at most 400 s")
    raw_change: float | None = None  # result − baseline, in the item's units
    effect: float | None = None  # the isolated improvement in the item's units (better is positive)
    isolation: str = ""  # the method that isolated it: control_group, trend_line, estimate, or none
    isolation_note: str = ""  # how it was isolated (or why not), in words
    isolated: bool = False
    raw_benefit: float | None = None  # the raw change in money, before isolation
    responses: int | None = None  # a survey result: how many answered, of how many asked, the rate (%)
    asked: int | None = None
    response_rate: float | None = None


class RoiSummary(BaseModel):
    benefits: float
    costs: float
    currency: str
    benefit_cost_ratio: float
    roi_percent: float
    # Added with isolation and cost lines (defaults for ROIs stored before them).
    isolated_benefits: float | None = None
    not_isolated_benefits: float | None = None
    raw_benefits: float | None = None
    isolated_roi_percent: float | None = None  # on the isolated benefits alone, when some are not isolated
    not_isolated_items: list[str] = Field(default_factory=list)
    cost_lines: list[dict[str, object]] = Field(default_factory=list)


def _item_result(item: PlanItem, checkpoints: Sequence[Checkpoint]) -> ItemResult:
    recorded = sorted((c for c in checkpoints if c.item_id == item.id and c.value is not None),
                      key=lambda c: c.due_at)
    latest = recorded[-1] if recorded else None
    value = latest.value if latest else None
    baseline = item.baseline.value if item.baseline else None
    direction = direction_of(item)
    target = item.target
    fields: dict[str, object] = {}
    s = sign(direction)
    if value is not None and latest is not None:
        raw = value - baseline if baseline is not None else None
        isolated = isolate(item.isolation, direction, item.unit, baseline, value, latest.comparison_value)
        raw_benefit = raw * s * item.value_per_unit if raw is not None and s is not None \
            and item.value_per_unit is not None else None
        benefit = raw_benefit
        if isolated.effect is not None and item.value_per_unit is not None:
            benefit = isolated.effect * item.value_per_unit
        fields = {"raw_change": raw, "effect": isolated.effect, "isolation": isolated.method.value,
                  "isolation_note": isolated.note, "isolated": isolated.effect is not None,
                  "raw_benefit": _round(raw_benefit), "monetary_benefit": _round(benefit)}
        if latest.tally is not None:
            fields.update(responses=latest.tally.n, asked=latest.tally.asked,
                          response_rate=latest.tally.response_rate)
    return ItemResult(item_id=item.id, metric=item.metric, unit=item.unit, baseline=baseline, target=target.value,
                      result=value, outcome=verdict(direction, target, baseline, value), direction=direction.value,
                      guardrail=item.guardrail, target_low=target.low, target_high=target.high,
                      goal=wording.goal(direction.value, target.value, item.unit, target.low, target.high),
                      **fields)


def _round(value: float | None) -> float | None:
    """Rounded to cents; None for a value that overflowed (only for values stored before they were bounded)."""
    return round(value, 2) if value is not None and math.isfinite(value) else None


def compare(plan: MeasurementPlan | None,
            checkpoints: Sequence[Checkpoint]) -> tuple[list[ItemResult], RoiSummary | None]:
    """Each plan item's latest recorded result against its target; the Phillips ROI when the plan has
    costs and at least one item a monetary benefit."""
    if plan is None:
        return [], None
    results = [_item_result(item, checkpoints) for item in plan.items]
    monetised = [r for r in results if r.monetary_benefit is not None]
    costs = plan.costs
    if costs is None or not monetised:
        return results, None
    # Inputs are bounded (states/validation.py), so these are finite; a plan stored before the bounds
    # could still overflow: then no ROI, never an inf.
    total = costs.total
    isolated = sum(r.monetary_benefit or 0.0 for r in monetised if r.isolated)
    not_isolated = sum(r.monetary_benefit or 0.0 for r in monetised if not r.isolated)
    benefits = isolated + not_isolated
    if not (math.isfinite(benefits) and math.isfinite(total) and total > 0
            and math.isfinite(benefits / total) and math.isfinite((benefits - total) / total * 100)):
        return results, None
    mixed = any(r.isolated for r in monetised) and any(not r.isolated for r in monetised)
    return results, RoiSummary(
        benefits=round(benefits, 2), costs=round(total, 2), currency=costs.currency,
        benefit_cost_ratio=round(benefits / total, 2), roi_percent=round((benefits - total) / total * 100, 1),
        isolated_benefits=round(isolated, 2), not_isolated_benefits=round(not_isolated, 2),
        raw_benefits=round(sum(r.raw_benefit or 0.0 for r in monetised), 2),
        isolated_roi_percent=round((isolated - total) / total * 100, 1) if mixed else None,
        not_isolated_items=[r.item_id for r in monetised if not r.isolated],
        cost_lines=[{**line.model_dump(mode="json"), "currency": line.currency or costs.currency}
                    for line in costs.itemised()])


def outcome_counts(results: Sequence[ItemResult]) -> dict[str, int]:
    """How many plan items met, partly met, did not meet their target, got worse (or have no data)."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome.value] = counts.get(r.outcome.value, 0) + 1
    return counts
