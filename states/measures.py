"""The evidence fields of a measurement plan: which way is good (``Direction``), how the training's
effect is isolated from other causes (``Isolation``), and the fully loaded costs (``Costs``).

Judging results by them is :mod:`states.evidence`'s business; the plan item (:mod:`states.models`)
carries them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from states.fields import Line, Model
from states.validation import MAX_MONEY, Measure, Money


class Direction(StrEnum):
    """Which way is good. Without one an item is ``decrease`` when its target is below its baseline,
    else ``increase`` (how plans written before directions were judged)."""

    INCREASE = "increase"    # up to the target
    DECREASE = "decrease"    # down to the target
    AT_MOST = "at_most"      # stay at or below a ceiling (target.value)
    AT_LEAST = "at_least"    # stay at or above a floor (target.value)
    WITHIN = "within"        # stay within target.low .. target.high


class IsolationMethod(StrEnum):
    CONTROL_GROUP = "control_group"
    TREND_LINE = "trend_line"
    ESTIMATE = "estimate"
    NONE = "none"


Percent = Annotated[float, Field(gt=0, le=100)]


class Isolation(Model):
    """How the training's effect is told apart from other causes (Phillips): the comparison group's
    baseline (its result is recorded with each checkpoint result), the trend line's expected value,
    or the estimated share of the change with the estimators' confidence."""

    method: IsolationMethod
    source: Line = ""
    comparison_baseline: Measure | None = None
    expected_value: Measure | None = None
    share_percent: Percent | None = None
    confidence_percent: Percent | None = None

    _NEEDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "control_group": ("comparison_baseline", "source"), "trend_line": ("expected_value", "source"),
        "estimate": ("share_percent", "confidence_percent", "source"), "none": ()}

    @model_validator(mode="after")
    def _inputs(self) -> Isolation:
        needs = self._NEEDS[self.method.value]
        missing = [f for f in needs if getattr(self, f) in (None, "")]
        if missing:
            raise ValueError(f"{self.method.value} needs {', '.join(missing)}")
        extra = [f for f in ("comparison_baseline", "expected_value", "share_percent", "confidence_percent")
                 if f not in needs and getattr(self, f) is not None]
        if extra:
            raise ValueError(f"{', '.join(extra)} do not belong to {self.method.value}")
        return self


class CostCategory(StrEnum):
    ANALYSIS = "analysis"
    DESIGN = "design"
    DEVELOPMENT = "development"
    DELIVERY = "delivery"
    PARTICIPANTS_TIME = "participants_time"
    MATERIALS = "materials"
    TOOLS = "tools"
    FACILITIES = "facilities"
    EVALUATION = "evaluation"
    OTHER = "other"


class CostLine(Model):
    category: CostCategory
    amount: float = Field(ge=0, le=MAX_MONEY)
    description: Line = ""
    currency: Line = Field(default="", description="default: the plan's currency; another one is refused")


class Costs(Model):
    """The fully loaded costs: itemised ``lines``, or one ``program_cost`` (plans written before cost
    lines; read as one line 'programme, not itemised'), in one ``currency``."""

    program_cost: Money | None = None
    currency: Line = "USD"
    lines: list[CostLine] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_total(self) -> Costs:
        if self.program_cost is not None and self.lines:
            raise ValueError("give cost lines or program_cost, not both (program_cost would be counted twice)")
        if self.program_cost is None and not self.lines:
            raise ValueError("give cost lines (or program_cost)")
        for i, line in enumerate(self.lines):
            if line.currency and line.currency.upper() != self.currency.upper():
                raise ValueError(f"lines[{i}].currency: {line.currency} is not the plan's currency "
                                 f"{self.currency} (one currency per plan)")
        if self.total <= 0:
            raise ValueError("the costs add up to 0: an ROI needs the fully loaded costs")
        return self

    @property
    def total(self) -> float:
        return self.program_cost if self.program_cost is not None else sum(line.amount for line in self.lines)

    def itemised(self) -> list[CostLine]:
        """The cost lines (one 'other' line for a plan that gives only program_cost)."""
        if self.lines:
            return list(self.lines)
        return [CostLine(category=CostCategory.OTHER, amount=self.total, description="programme, not itemised")]
