"""Direction and guardrails, isolation of the training's effect, honest ROI (issue 8), on the pure domain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from states.checkpoints import Checkpoint, CheckpointStatus
from states.errors import InvalidInput
from states.evidence import Outcome, roi_sentences, verdict
from states.measures import Direction
from states.models import MeasurementPlan, PlanItem, Target
from states.results import compare
from states.validation import parse
from tests.builders import person

T = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def _target(direction: Direction) -> Target:
    if direction == Direction.WITHIN:
        return Target(low=300, high=400, date="2026-12-31")  # type: ignore[arg-type]
    if direction in (Direction.INCREASE, Direction.AT_LEAST):
        return Target(value=80, date="2026-12-31")  # type: ignore[arg-type]
    return Target(value=10, date="2026-12-31")  # type: ignore[arg-type]


# direction, baseline, result, verdict. Baselines: increase/at_least from 60 towards 80; decrease/at_most
# from 30 towards 10; within from 500 towards 300..400. Partly = at least half the baseline's distance closed.
VERDICTS: list[tuple[Direction, float | None, float, Outcome]] = [
    (Direction.INCREASE, 60, 80, Outcome.MET), (Direction.INCREASE, 60, 85, Outcome.MET),
    (Direction.INCREASE, 60, 70, Outcome.PARTLY_MET), (Direction.INCREASE, 60, 65, Outcome.NOT_MET),
    (Direction.INCREASE, 60, 55, Outcome.WORSE),
    (Direction.INCREASE, None, 80, Outcome.MET), (Direction.INCREASE, None, 70, Outcome.NOT_MET),
    (Direction.DECREASE, 30, 10, Outcome.MET), (Direction.DECREASE, 30, 7, Outcome.MET),
    (Direction.DECREASE, 30, 20, Outcome.PARTLY_MET), (Direction.DECREASE, 30, 25, Outcome.NOT_MET),
    (Direction.DECREASE, 30, 31, Outcome.WORSE),
    (Direction.DECREASE, None, 7, Outcome.MET), (Direction.DECREASE, None, 20, Outcome.NOT_MET),
    # "incidents per month, at most 10": 7 is met, with or without a baseline
    (Direction.AT_MOST, 30, 7, Outcome.MET), (Direction.AT_MOST, 30, 20, Outcome.PARTLY_MET),
    (Direction.AT_MOST, 30, 25, Outcome.NOT_MET), (Direction.AT_MOST, 30, 35, Outcome.WORSE),
    (Direction.AT_MOST, 8, 12, Outcome.WORSE),  # was under the ceiling, is over it now
    (Direction.AT_MOST, None, 7, Outcome.MET), (Direction.AT_MOST, None, 10, Outcome.MET),
    (Direction.AT_MOST, None, 11, Outcome.NOT_MET),
    (Direction.AT_LEAST, 60, 90, Outcome.MET), (Direction.AT_LEAST, 60, 72, Outcome.PARTLY_MET),
    (Direction.AT_LEAST, 60, 65, Outcome.NOT_MET), (Direction.AT_LEAST, 60, 50, Outcome.WORSE),
    (Direction.AT_LEAST, None, 80, Outcome.MET), (Direction.AT_LEAST, None, 79, Outcome.NOT_MET),
    (Direction.WITHIN, 500, 350, Outcome.MET), (Direction.WITHIN, 500, 300, Outcome.MET),
    (Direction.WITHIN, 500, 450, Outcome.PARTLY_MET), (Direction.WITHIN, 500, 480, Outcome.NOT_MET),
    (Direction.WITHIN, 500, 520, Outcome.WORSE), (Direction.WITHIN, 350, 250, Outcome.WORSE),
    (Direction.WITHIN, None, 399, Outcome.MET), (Direction.WITHIN, None, 250, Outcome.NOT_MET),
]


@pytest.mark.parametrize(("direction", "baseline", "value", "expected"), VERDICTS,
                         ids=[f"{d.value}-{b}-{v}-{o.value}" for d, b, v, o in VERDICTS])
def test_verdicts_follow_the_direction(direction: Direction, baseline: float | None, value: float,
                                       expected: Outcome) -> None:
    assert verdict(direction, _target(direction), baseline, value) == expected


def test_every_direction_has_every_verdict_with_a_baseline_and_met_or_not_without() -> None:
    seen = {(d, b is not None, o) for d, b, _v, o in VERDICTS}
    for d in Direction:
        assert {o for dd, with_b, o in seen if dd == d and with_b} == {Outcome.MET, Outcome.PARTLY_MET,
                                                                       Outcome.NOT_MET, Outcome.WORSE}
        assert {o for dd, with_b, o in seen if dd == d and not with_b} == {Outcome.MET, Outcome.NOT_MET}


def test_no_result_is_no_data() -> None:
    assert verdict(Direction.AT_MOST, _target(Direction.AT_MOST), None, None) == Outcome.NO_DATA


def _item(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": "sales", "framework": "phillips", "level": 4, "metric": "monthly sales per rep", "unit": "kEUR",
        "baseline": {"value": 100, "date": "2026-01-31", "source": "ERP"},
        "target": {"value": 140, "date": "2026-12-31"}, "instrument": "system_report", "respondent": "manager",
        "checkpoints": ["P90D"], "owner": person(), "value_per_unit": 1000,
    }
    item.update(overrides)
    return item


COSTS = {"currency": "EUR", "lines": [
    {"category": "design", "amount": 5000}, {"category": "delivery", "amount": 6000, "description": "two trainers"},
    {"category": "participants_time", "amount": 4000, "currency": "EUR"}]}


def _compare(items: list[dict[str, Any]], values: dict[str, tuple[float, float | None]],
             costs: dict[str, Any] | None = COSTS) -> tuple[Any, Any]:
    plan = parse(MeasurementPlan, {"items": items, **({"costs": costs} if costs else {})})
    checkpoints = [Checkpoint(key=f"1:{k}:P90D", item_id=k, offset="P90D", due_at=T, status=CheckpointStatus.CLOSED,
                              value=v, comparison_value=cv) for k, (v, cv) in values.items()]
    return compare(plan, checkpoints)


def test_control_group_isolates_20000_of_a_45000_change_roi_33_percent_not_200() -> None:
    iso = {"method": "control_group", "comparison_baseline": 100, "source": "region North, not trained"}
    [result], roi = _compare([_item(isolation=iso)], {"sales": (145, 125)})
    assert (result.raw_change, result.effect, result.raw_benefit, result.monetary_benefit) == (45, 20, 45000, 20000)
    assert result.isolated and result.isolation == "control_group"
    assert "comparison group went from 100 to 125 kEUR (region North, not trained)" in result.isolation_note
    assert (roi.benefits, roi.costs, roi.roi_percent, roi.benefit_cost_ratio) == (20000, 15000, 33.3, 1.33)
    assert roi.raw_benefits == 45000 and roi.not_isolated_items == [] and roi.isolated_roi_percent is None
    assert [x["category"] for x in roi.cost_lines] == ["design", "delivery", "participants_time"]
    words = roi_sentences(roi.model_dump(mode="json"))
    assert words[0] == ("Benefit-cost ratio 1.33, return on investment 33.3% (20,000 EUR of benefits for 15,000 EUR "
                        "invested).")
    assert "isolated effect, not the raw change" in words[1]
    assert words[2] == ("Fully loaded costs: design 5,000 EUR; delivery (two trainers) 6,000 EUR; participants' time "
                        "4,000 EUR.")


def test_estimate_60_percent_share_at_80_percent_confidence() -> None:
    iso = {"method": "estimate", "share_percent": 60, "confidence_percent": 80, "source": "participants, n=31"}
    [result], roi = _compare([_item(isolation=iso)], {"sales": (145, None)})
    assert result.effect == pytest.approx(21.6) and result.monetary_benefit == 21600  # 45 x 0.6 x 0.8
    assert roi.roi_percent == 44.0  # (21,600 - 15,000) / 15,000


def test_trend_line_effect_is_the_result_above_the_expected_value() -> None:
    iso = {"method": "trend_line", "expected_value": 130, "source": "12-month regression"}
    [result], roi = _compare([_item(isolation=iso)], {"sales": (145, None)})
    assert (result.effect, result.monetary_benefit, roi.roi_percent) == (15, 15000, 0.0)


def test_a_decrease_item_counts_the_reduction_as_the_benefit() -> None:
    item = _item(metric="incidents per month", unit="incidents", direction="at_most", guardrail=False,
                 baseline={"value": 30, "date": "2026-01-31", "source": "ITSM"},
                 target={"value": 10, "date": "2026-12-31"},
                 isolation={"method": "control_group", "comparison_baseline": 30, "source": "site B"})
    [result], roi = _compare([item], {"sales": (7, 25)})
    assert result.outcome == Outcome.MET
    assert (result.raw_change, result.effect, result.monetary_benefit) == (-23, 18, 18000)  # 23 fewer − 5 fewer


def test_not_isolated_is_said_plainly_and_kept_apart_from_the_isolated_benefit() -> None:
    iso = {"method": "control_group", "comparison_baseline": 100, "source": "region North"}
    items = [_item(isolation=iso), _item(id="quality", metric="first-time-right", unit="%", value_per_unit=500,
                                         baseline={"value": 80, "date": "2026-01-31", "source": "QA"},
                                         target={"value": 90, "date": "2026-12-31"})]
    results, roi = _compare(items, {"sales": (145, 125), "quality": (88, None)})
    assert [r.isolated for r in results] == [True, False] and results[1].isolation == "none"
    assert (roi.isolated_benefits, roi.not_isolated_benefits, roi.benefits) == (20000, 4000, 24000)
    assert roi.not_isolated_items == ["quality"] and roi.isolated_roi_percent == 33.3 and roi.roi_percent == 60.0
    assert "4,000 EUR (quality) is not isolated from other causes" in roi_sentences(roi.model_dump(mode="json"))[1]
    [only_raw], roi = _compare(items[1:], {"quality": (88, None)})
    assert "Not isolated from other causes" in roi_sentences(roi.model_dump(mode="json"))[1]


def test_a_control_group_without_its_result_is_not_isolated() -> None:
    iso = {"method": "control_group", "comparison_baseline": 100, "source": "region North"}
    [result], roi = _compare([_item(isolation=iso)], {"sales": (145, None)})
    assert not result.isolated and result.monetary_benefit == 45000
    assert "comparison group's result was not recorded" in result.isolation_note and roi.not_isolated_items == ["sales"]


def test_program_cost_is_still_read_as_one_line_and_no_costs_means_no_roi() -> None:
    [_], roi = _compare([_item()], {"sales": (145, None)}, costs={"program_cost": 15000, "currency": "EUR"})
    assert roi.costs == 15000 and roi.cost_lines == [{"category": "other", "amount": 15000.0, "currency": "EUR",
                                                      "description": "programme, not itemised"}]
    assert _compare([_item()], {"sales": (145, None)}, costs=None)[1] is None


def test_a_range_item_has_no_monetary_benefit_and_a_guardrail_is_held() -> None:
    guard = _item(id="aht", metric="handling time", unit="s", direction="at_most", guardrail=True,
                  value_per_unit=None, baseline={"value": 380, "date": "2026-01-31", "source": "ACD"},
                  target={"value": 400, "date": "2026-12-31"})
    band = _item(id="band", direction="within", target={"low": 300, "high": 400, "date": "2026-12-31"})
    results, roi = _compare([guard, band], {"aht": (395, None), "band": (350, None)})
    assert [(r.outcome, r.guardrail, r.goal) for r in results] == [(Outcome.MET, True, "at most 400"),
                                                                    (Outcome.MET, False, "between 300 and 400")]
    assert results[1].monetary_benefit is None and roi is None


BAD_PLANS: list[tuple[str, dict[str, Any], str, str]] = [
    ("range-low-above-high", _item(direction="within", target={"low": 400, "high": 300, "date": "2026-12-31"}),
     "items[0]", "low 400 is above high 300"),
    ("range-without-bounds", _item(direction="within"), "items[0]", "needs target.low and target.high"),
    ("bounds-without-within", _item(target={"value": 1, "low": 0, "high": 2, "date": "2026-12-31"}),
     "items[0]", "low and high are for direction 'within'"),
    ("estimate-over-100", _item(isolation={"method": "estimate", "share_percent": 120, "confidence_percent": 80,
                                           "source": "x"}), "items[0].isolation.share_percent", "less than or equal"),
    ("control-without-baseline", _item(isolation={"method": "control_group", "source": "x"}),
     "items[0].isolation", "control_group needs comparison_baseline"),
    ("unknown-direction", _item(direction="up"), "items[0].direction", "Input should be"),
]


@pytest.mark.parametrize(("name", "item", "field", "message"), BAD_PLANS, ids=[b[0] for b in BAD_PLANS])
def test_bad_plan_items_name_the_field(name: str, item: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse(MeasurementPlan, {"items": [item]})
    assert any(e.field == field and message in e.message for e in info.value.errors), info.value.errors


BAD_COSTS: list[tuple[str, dict[str, Any], str, str]] = [
    ("negative", {"currency": "EUR", "lines": [{"category": "design", "amount": -5}]}, "costs.lines[0].amount",
     "greater than or equal to 0"),
    ("mixed-currencies", {"currency": "EUR", "lines": [{"category": "design", "amount": 5, "currency": "USD"}]},
     "costs", "lines[0].currency: USD is not the plan's currency EUR"),
    ("zero-total", {"currency": "EUR", "lines": [{"category": "design", "amount": 0}]}, "costs", "add up to 0"),
    ("both", {"currency": "EUR", "program_cost": 10, "lines": [{"category": "design", "amount": 5}]}, "costs",
     "not both"),
    ("none", {"currency": "EUR"}, "costs", "give cost lines"),
    ("unknown-category", {"currency": "EUR", "lines": [{"category": "snacks", "amount": 5}]},
     "costs.lines[0].category", "Input should be"),
]


@pytest.mark.parametrize(("name", "costs", "field", "message"), BAD_COSTS, ids=[b[0] for b in BAD_COSTS])
def test_bad_costs_name_the_field(name: str, costs: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse(MeasurementPlan, {"items": [_item()], "costs": costs})
    assert any(e.field == field and message in e.message for e in info.value.errors), info.value.errors


def test_an_item_without_a_direction_is_judged_as_before() -> None:
    down = PlanItem.model_validate(_item(baseline={"value": 30, "date": "2026-01-31", "source": "x"},
                                         target={"value": 10, "date": "2026-12-31"}, value_per_unit=None))
    results, _ = _compare([down.model_dump(mode="json")], {"sales": (7, None)}, costs=None)
    assert (results[0].direction, results[0].outcome) == ("decrease", Outcome.MET)
