"""Evidence through the service on the in-memory store: no early results, the isolated ROI in the report,
and documents stored before directions, isolation and cost lines still load."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from flows import report
from flows.clock import FixedClock
from flows.service import Service
from states.errors import TransitionRefused
from states.request import TrainingRequest
from tests.builders import ACTOR, approval_data, drive_to, person, record_when_due, result_data

SALES_PLAN: dict[str, Any] = {
    "items": [{
        "id": "sales", "framework": "phillips", "level": 4, "metric": "monthly sales per rep", "unit": "kEUR",
        "baseline": {"value": 100, "date": "2026-01-31", "source": "ERP"},
        "target": {"value": 140, "date": "2026-12-31"}, "instrument": "system_report", "respondent": "manager",
        "checkpoints": ["P90D"], "owner": person(), "value_per_unit": 1000,
        "isolation": {"method": "control_group", "comparison_baseline": 100, "source": "region North, not trained"},
    }, {
        "id": "aht", "framework": "kirkpatrick", "level": 4, "metric": "handling time", "unit": "s",
        "baseline": {"value": 380, "date": "2026-01-31", "source": "ACD"}, "direction": "at_most", "guardrail": True,
        "target": {"value": 400, "date": "2026-12-31"}, "instrument": "system_report", "respondent": "manager",
        "checkpoints": ["P90D"], "owner": person(),
    }],
    "costs": {"currency": "EUR", "lines": [{"category": "design", "amount": 5000},
                                            {"category": "delivery", "amount": 6000},
                                            {"category": "participants_time", "amount": 4000}]},
}


def _delivered(service: Service) -> int:
    r = drive_to(service, "diagnosed")
    service.draft_plan(r.id, SALES_PLAN, ACTOR)
    service.approve_plan(r.id, approval_data(r.intake.sponsor.email), r.intake.sponsor.email)
    return int(drive_to(service, "delivered", request_id=r.id).id)


def test_a_result_before_its_due_date_is_refused_and_nothing_is_written(memory_service: Service) -> None:
    rid = _delivered(memory_service)
    before = memory_service.show(rid)
    with pytest.raises(TransitionRefused) as info:
        memory_service.record(rid, "sales:P90D", result_data(145), ACTOR)
    due = before.checkpoint("sales:P90D").due_at.date().isoformat()
    assert info.value.exit_code == 3
    assert f"is due on {due}" in str(info.value) and "early_reason (--early REASON)" in str(info.value)
    after = memory_service.show(rid)
    assert after.version == before.version and after.checkpoint("sales:P90D").value is None
    assert [e.type for e in memory_service.history(rid)][-1] != "result_recorded"


def test_an_early_result_with_a_reason_is_recorded_with_it_in_the_history(memory_service: Service) -> None:
    rid = _delivered(memory_service)
    request = memory_service.record(rid, "sales:P90D", result_data(145, early_reason="ERP closed the quarter early"),
                                    ACTOR)
    c = request.checkpoint("sales:P90D")
    assert (c.value, c.early_reason) == (145, "ERP closed the quarter early")
    event = memory_service.history(rid)[-1]
    assert event.type == "result_recorded"
    assert event.payload["early_reason"] == "ERP closed the quarter early"
    assert event.payload["due_at"] == c.due_at.isoformat()


def test_a_result_once_due_needs_no_reason_and_records_none(memory_service: Service, clock: FixedClock) -> None:
    rid = _delivered(memory_service)
    clock.set(memory_service.show(rid).checkpoint("sales:P90D").due_at + timedelta(hours=1))
    memory_service.record(rid, "sales:P90D", result_data(145, early_reason="not needed"), ACTOR)
    assert memory_service.show(rid).checkpoint("sales:P90D").early_reason == ""
    assert "early_reason" not in memory_service.history(rid)[-1].payload


def test_closing_as_missed_before_due_is_not_a_result_and_is_allowed(memory_service: Service) -> None:
    rid = _delivered(memory_service)
    request = memory_service.record(rid, "aht:P90D", result_data(None, missed_reason="ACD retired"), ACTOR)
    assert request.checkpoint("aht:P90D").status.value == "missed"


def test_the_report_shows_the_isolated_effect_the_guardrail_and_the_honest_roi(memory_service: Service) -> None:
    rid = _delivered(memory_service)
    record_when_due(memory_service, rid, "sales:P90D", result_data(145, comparison_value=125), ACTOR)
    record_when_due(memory_service, rid, "aht:P90D", result_data(395), ACTOR)
    measured = memory_service.measure(rid, ACTOR)
    assert measured.roi is not None and measured.roi.roi_percent == 33.3  # not 200%
    text = report.build(memory_service.show(rid)).text
    assert "handling time: from 380 to 395 s (guardrail at most 400: held)" in text
    assert "the programme's effect: 20 kEUR (control group: the comparison group went from 100 to 125 kEUR" in text
    assert "worth 20,000 EUR" in text
    assert "return on investment 33.3% (20,000 EUR of benefits for 15,000 EUR invested)" in text
    assert "Fully loaded costs: design 5,000 EUR; delivery 6,000 EUR; participants' time 4,000 EUR." in text
    html = report.build(memory_service.show(rid)).html
    assert "guardrail: at most 400" in html and "held" in html


def test_a_comparison_value_on_a_missed_checkpoint_is_refused(memory_service: Service) -> None:
    from states.errors import InvalidInput

    rid = _delivered(memory_service)
    with pytest.raises(InvalidInput) as info:
        memory_service.record(rid, "sales:P90D", {"missed_reason": "x", "comparison_value": 3}, ACTOR)
    assert "comparison_value" in str(info.value)


# A measured request's document as the main branch stored it before directions, isolation and cost lines.
OLD_DOCUMENT = {
    "id": 7, "state": "measured", "version": 9, "created_at": "2026-03-02T09:00:00+00:00",
    "updated_at": "2026-08-01T09:00:00+00:00",
    "intake": {"title": "Objection handling", "requester": {"name": "Rita", "email": "rita@example.org", "role": ""},
               "sponsor": {"name": "Sam", "email": "sam@example.org", "role": ""}, "stakeholders": [],
               "requested_solution": "A workshop."},
    "plan": {"items": [{"id": "m1", "framework": "kirkpatrick", "level": 3, "metric": "resolution", "unit": "%",
                        "baseline": {"value": 62, "date": "2026-02-01", "source": "CRM"},
                        "target": {"value": 75, "date": "2026-12-31"}, "instrument": "system_report",
                        "respondent": "manager", "checkpoints": ["P30D"],
                        "owner": {"name": "Olga", "email": "olga@example.org", "role": ""},
                        "value_per_unit": 1000}],
             "costs": {"program_cost": 8000, "currency": "EUR"}},
    "checkpoints": [{"key": "7:m1:P30D", "item_id": "m1", "offset": "P30D", "due_at": "2026-05-20T09:00:00+00:00",
                     "status": "closed", "value": 76, "note": ""}],
    "results": [{"item_id": "m1", "metric": "resolution", "unit": "%", "baseline": 62, "target": 75, "result": 76,
                 "outcome": "met", "monetary_benefit": 14000}],
    "roi": {"benefits": 14000, "costs": 8000, "currency": "EUR", "benefit_cost_ratio": 1.75, "roi_percent": 75},
}


def test_a_document_stored_before_evidence_fields_loads_and_reports() -> None:
    request = TrainingRequest.model_validate_json(json.dumps(OLD_DOCUMENT))
    assert request.plan is not None and request.plan.costs is not None and request.plan.costs.total == 8000
    assert request.plan.items[0].direction is None and request.results[0].goal == ""
    text = report.build(request).text
    assert "resolution: from 62% to 76% (target 75%: target met)" in text
    assert "Benefit-cost ratio 1.75, return on investment 75% (14,000 EUR of benefits for 8,000 EUR invested)." in text
    assert "isolated" not in text  # nothing is claimed about isolation for an ROI stored before it


def test_the_timeline_says_an_early_result_and_its_comparison_value(memory_service: Service) -> None:
    from flows.timeline import summarize

    rid = _delivered(memory_service)
    memory_service.record(rid, "sales:P90D", result_data(145, comparison_value=125, early_reason="quarter closed"),
                          ACTOR)
    [event] = [e for e in memory_service.history(rid) if e.type == "result_recorded"]
    text = summarize(event)
    assert text.startswith("sales:P90D = 145, comparison group 125 (from the CRM); early, due ")
    assert text.endswith(": quarter closed")


def test_the_sponsor_sees_directions_guardrails_and_the_cost_lines_in_the_approval_request(
        memory_service: Service, memory_store: Any) -> None:
    from connectors.email.render import render_bodies
    from connectors.notification_codec import decode_notification

    r = drive_to(memory_service, "diagnosed")
    memory_service.draft_plan(r.id, SALES_PLAN, ACTOR)
    [key] = [k for k in memory_store.outbox if k.startswith(f"{r.id}:plan_approval_request")
             and "handling time" in json.dumps(memory_store.outbox[k].notification)]
    text, html = render_bodies(decode_notification(json.dumps(memory_store.outbox[key].notification)))
    assert "Target:     at most 400 s (a guardrail: must not get worse)" in text
    assert "Programme cost: 15,000 EUR (design 5,000 EUR, delivery 6,000 EUR, participants time 4,000 EUR)" in text
    assert "15,000 EUR" in html and "at most 400 s" in html
