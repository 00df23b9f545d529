"""Plan review before approval: what a partner would raise about a measurement plan (warnings, not refusals).

:func:`review` reads a drafted plan and says, in words, what is likely to weaken the evidence later:
no item on behaviour at work, no item on a business result, a business result without a baseline,
money put on an item whose effect is not isolated, a survey without a minimum sample. Drafting never
fails on them (the guards refuse what cannot work; these are judgement calls): the aggregate keeps
them with the plan (``TrainingRequest.plan_review``), ``ldflow plan draft``, the API and the web page
show them, and the sponsor's approval request lists them. Pure.
"""

from __future__ import annotations

from typing import Final

from states.measures import IsolationMethod
from states.models import Framework, Instrument, MeasurementPlan, PlanItem

#: The levels that measure behaviour at work (Kirkpatrick 3, LTEM 6–7, Phillips 3) …
BEHAVIOUR: Final = {Framework.KIRKPATRICK: range(3, 4), Framework.LTEM: range(6, 8), Framework.PHILLIPS: range(3, 4)}
#: … and a business result (Kirkpatrick 4, LTEM 8, Phillips 4–5: impact and ROI).
RESULTS: Final = {Framework.KIRKPATRICK: range(4, 5), Framework.LTEM: range(8, 9), Framework.PHILLIPS: range(4, 6)}


def _label(item: PlanItem) -> str:
    return f"item '{item.id}' ({item.metric})"


def is_behaviour(item: PlanItem) -> bool:
    return item.level in BEHAVIOUR[item.framework]


def is_result(item: PlanItem) -> bool:
    return item.level in RESULTS[item.framework]


def _without_minimum_sample(item: PlanItem) -> bool:
    """A survey whose result would stand on a single answer: no ``survey:`` rules, or a minimum of one
    answer and no minimum response rate (the defaults)."""
    if item.instrument != Instrument.SURVEY:
        return False
    rules = item.survey
    return rules is None or (rules.min_responses <= 1 and rules.min_response_rate == 0)


def review(plan: MeasurementPlan) -> list[str]:
    """The warnings on ``plan``, plan-wide first, then item by item (empty: nothing to raise)."""
    warnings: list[str] = []
    if not any(is_behaviour(i) for i in plan.items):
        warnings.append("no item measures behaviour at work (Kirkpatrick 3, LTEM 6–7, Phillips 3): nothing will "
                        "show whether people do anything differently after the programme")
    if not any(is_result(i) for i in plan.items):
        warnings.append("no item measures a business result (Kirkpatrick 4, LTEM 8, Phillips 4–5): the plan cannot "
                        "show the effect on the business goal")
    for item in plan.items:
        if is_result(item) and item.baseline is None:
            warnings.append(f"{_label(item)} is a business result without a baseline: the change cannot be "
                            "measured against where it started")
        if item.value_per_unit is not None and (item.isolation is None or
                                                item.isolation.method == IsolationMethod.NONE):
            warnings.append(f"{_label(item)} puts money on the change without an isolation method (a comparison "
                            "group, a trend line or participants' estimates): its benefit will not be told apart "
                            "from other causes")
        if _without_minimum_sample(item):
            warnings.append(f"{_label(item)} is a survey without a minimum sample (survey: min_responses or "
                            "min_response_rate): a result from one or two answers would count")
    return warnings
