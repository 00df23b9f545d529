"""The stakeholder report: results against baseline and target, ROI, and the three touchpoints."""

from __future__ import annotations

import pytest

from connectors.testing import InMemoryStore
from flows import report
from flows.service import Service
from states.errors import TransitionRefused
from tests.builders import ACTOR, ack_data, drive_to, plan_data, record_when_due


def _measured(service: Service, values: dict[str, float]) -> int:
    r = drive_to(service, "delivered")
    for c in r.checkpoints:
        record_when_due(service, r.id, c.key, {"value": values[f"{c.item_id}:{c.offset}"], "note": "CRM"}, ACTOR)
    service.measure(r.id, ACTOR)
    return r.id


def test_a_measured_request_reports_each_item_against_baseline_and_target(memory_service: Service) -> None:
    rid = _measured(memory_service, {"m1:P30D": 70.0, "m1:P90D": 76.0, "m2:P1D": 3.9})
    built = report.build(memory_service.show(rid))
    text = built.text
    assert "first-call resolution: from 62% to 76% (target 75%: target met)" in text
    assert "relevance rating: 3.9 on a 1–5 scale (target 4.2: not yet met)" in text
    # Phillips: (76 - 62) x 1000 = 14000 of benefits for 8000 invested: BCR 1.75, ROI 75%
    assert "Benefit-cost ratio 1.75, return on investment 75% (14,000 EUR of benefits for 8,000 EUR" in text
    assert "(to be completed together)" in text  # no recap before acknowledgement
    assert "<table" in built.html and "first-call resolution" in built.html
    assert report.outcome_counts(memory_service.show(rid)) == {"met": 1, "not_met": 1}


def test_partly_met_and_no_roi_without_costs(memory_service: Service) -> None:
    r = drive_to(memory_service, "diagnosed")
    memory_service.draft_plan(r.id, plan_data(costs=False), ACTOR, expect_version=None)
    rid = r.id
    memory_service.approve_plan(rid, {"approver": r.intake.sponsor.email}, r.intake.sponsor.email)
    drive_to(memory_service, "delivered", request_id=rid)
    for key, value in (("m1:P30D", 66.0), ("m1:P90D", 69.0), ("m2:P1D", 4.5)):
        record_when_due(memory_service, rid, key, {"value": value}, ACTOR)
    memory_service.measure(rid, ACTOR)
    request = memory_service.show(rid)
    assert request.roi is None
    text = report.build(request).text
    assert "partly there" in text and "Benefit-cost ratio" not in text


def test_the_acknowledged_report_has_recap_action_plan_and_thanks(memory_service: Service) -> None:
    rid = _measured(memory_service, {"m1:P30D": 70.0, "m1:P90D": 71.0, "m2:P1D": 4.4})
    memory_service.acknowledge(rid, ack_data(), ACTOR)
    built = report.build(memory_service.show(rid))
    for expected in ("resolution rate rose from 62% to 71%", "add LAER to the onboarding path",
                     "owner: Olga Owner", "Sam Sponsor: freed two hours a week for practice"):
        assert expected in built.text
    assert "(to be completed together)" not in built.text
    assert built.subject == "Results and thanks: Objection handling course"


def test_the_report_is_what_acknowledge_sends(memory_service: Service, memory_store: InMemoryStore) -> None:
    import json

    from connectors.db import outbox as ob
    from connectors.email.render import render_bodies

    rid = _measured(memory_service, {"m1:P30D": 70.0, "m1:P90D": 71.0, "m2:P1D": 4.4})
    memory_service.acknowledge(rid, ack_data(), ACTOR)
    sent = ob.decode_notification(json.dumps(memory_store.outbox[f"{rid}:results_report"].notification))
    text, _ = render_bodies(sent)
    assert text == report.build(memory_service.show(rid)).text


def test_user_text_is_escaped_in_html(memory_service: Service) -> None:
    rid = _measured(memory_service, {"m1:P30D": 70.0, "m1:P90D": 71.0, "m2:P1D": 4.4})
    memory_service.acknowledge(rid, ack_data(recap=["<script>alert(1)</script> worked"]), ACTOR)
    html = report.build(memory_service.show(rid)).html
    assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize("state", ["received", "diagnosed", "designed", "delivered"])
def test_no_report_before_measurement(memory_service: Service, state: str) -> None:
    r = drive_to(memory_service, state)
    with pytest.raises(TransitionRefused) as refused:
        report.build(memory_service.show(r.id))
    assert "reported on once it is measured" in str(refused.value)


def test_acknowledge_queues_what_the_one_report_builder_builds(memory_service: Service,
                                                              memory_store: InMemoryStore) -> None:
    import dataclasses

    from states.report import results_report

    rid = _measured(memory_service, {"m1:P30D": 70.0, "m1:P90D": 71.0, "m2:P1D": 4.4})
    memory_service.acknowledge(rid, ack_data(), ACTOR)
    built = dataclasses.replace(results_report(memory_service.show(rid)), key=f"{rid}:results_report",
                                request_id=rid)
    assert memory_store.outbox[f"{rid}:results_report"].notification == dataclasses.asdict(built)
