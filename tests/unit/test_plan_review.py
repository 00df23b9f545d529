"""Plan review before approval (issue 8 item 5): warnings a partner would raise, never refusals; kept
with the request, printed by ``plan draft`` and listed in the sponsor's approval request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.notification_codec import decode_notification
from flows.clock import FixedClock
from flows.service import Service
from states.models import MeasurementPlan
from states.plan_review import review
from tests.builders import ACTOR, drive_to, plan_data, plan_item
from tests.unit.test_email_render import bodies, do_render

BEHAVIOUR = "no item measures behaviour at work"
RESULT = "no item measures a business result"


def _review(*items: dict[str, Any]) -> list[str]:
    return review(MeasurementPlan.model_validate({"items": list(items)}))


def _isolated(**overrides: Any) -> dict[str, Any]:
    return {"isolation": {"method": "trend_line", "expected_value": 64.0, "source": "the 12-month trend"}, **overrides}


def test_a_complete_plan_raises_nothing() -> None:
    assert _review(plan_item("b"), plan_item("r", level=4, value_per_unit=50.0, **_isolated())) == []
    assert _review(plan_item("b", framework="ltem", level=6), plan_item("r", framework="ltem", level=8)) == []
    assert _review(plan_item("b", framework="phillips", level=3),
                   plan_item("r", framework="phillips", level=5, **_isolated(value_per_unit=10.0))) == []


def test_each_gap_is_named() -> None:
    reaction = plan_item("m9", level=1, baseline=False, metric="relevance rating", instrument="survey",
                         survey={"min_responses": 10})
    assert [w.split(" (")[0] for w in _review(reaction)] == [BEHAVIOUR, RESULT]
    only_result = _review(plan_item("r", level=4, baseline=False))
    assert only_result[0].startswith(BEHAVIOUR) and len(only_result) == 2
    assert "item 'r' (first-call resolution) is a business result without a baseline" in only_result[1]
    # LTEM 8 counts as a result, not behaviour: a plan of LTEM 8 alone still lacks a behaviour item
    assert _review(plan_item("r", framework="ltem", level=8))[0].startswith(BEHAVIOUR)


@pytest.mark.parametrize("isolation", [None, {"method": "none"}])
def test_money_without_isolation_is_raised(isolation: dict[str, Any] | None) -> None:
    item = plan_item("m1", level=4, value_per_unit=1000.0, **({"isolation": isolation} if isolation else {}))
    [warning] = _review(plan_item("b"), item)
    assert warning.startswith("item 'm1' (first-call resolution) puts money on the change without an isolation method")


@pytest.mark.parametrize(("rules", "raised"), [
    (None, True), ({"min_responses": 1}, True), ({"min_responses": 20}, False), ({"min_response_rate": 30}, False)])
def test_a_survey_without_a_minimum_sample_is_raised(rules: dict[str, Any] | None, raised: bool) -> None:
    survey = plan_item("s", level=1, baseline=False, instrument="survey", **({"survey": rules} if rules else {}))
    warnings = _review(plan_item("b"), plan_item("r", level=4), survey)
    assert any("is a survey without a minimum sample" in w for w in warnings) == raised


def test_drafting_keeps_the_warnings_and_the_sponsor_reads_them(memory_service: Service, clock: FixedClock,
                                                               tmp_path: Path) -> None:
    rid = drive_to(memory_service, "received").id
    drafted = memory_service.draft_plan(rid, plan_data(), ACTOR)  # a warning is no refusal: drafted
    assert drafted.plan is not None and drafted.plan_approved_by is None
    # the default plan: no result item, money without isolation (m1), surveys without a minimum sample
    assert [w.split(" (")[0] for w in drafted.plan_review][:2] == [RESULT, "item 'm1'"]
    assert all("without a minimum sample" in w for w in drafted.plan_review[2:])
    [mail] = [n for n in memory_service.store.outbox.values() if n.template == "plan_approval_request"]  # type: ignore[attr-defined]
    assert mail.notification["context"]["warnings"] == drafted.plan_review
    message = do_render(decode_notification(json.dumps(mail.notification, default=str)))
    text, html = bodies(message)
    assert "Before you approve, points a partner would raise about this plan" in text
    assert "  - no item measures a business result" in text and "puts money on the change" in text
    assert "<li>no item measures a business result" in html
    (tmp_path / "plan_approval_request.eml").write_bytes(bytes(message))
    # a plan that raises nothing: no such paragraph
    clean = plan_data(items=[plan_item("b"), plan_item("r", level=4, value_per_unit=50.0, **_isolated())])
    again = memory_service.draft_plan(rid, clean, ACTOR)
    assert again.plan_review == []
    [_, second] = sorted((n for n in memory_service.store.outbox.values()  # type: ignore[attr-defined]
                          if n.template == "plan_approval_request"), key=lambda n: n.key)
    text, _ = bodies(do_render(decode_notification(json.dumps(second.notification, default=str))))
    assert "Before you approve" not in text
