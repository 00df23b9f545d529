"""Evidence on real databases (SQLite, PostgreSQL): the isolated ROI and the guardrail survive a round
trip through the store, an early result writes nothing, and a request stored before directions,
isolation and cost lines still loads, measures and verifies."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, select, update

from connectors.db.tables import audit_events, requests
from flows import report
from flows.service import Service
from states.errors import TransitionRefused
from tests.builders import ACTOR, approval_data, drive_to, record_when_due, result_data
from tests.integration.conftest import table_snapshot
from tests.unit.test_evidence_service import SALES_PLAN


def _delivered(service: Service) -> int:
    r = drive_to(service, "diagnosed")
    service.draft_plan(r.id, SALES_PLAN, ACTOR)
    service.approve_plan(r.id, approval_data(r.intake.sponsor.email), r.intake.sponsor.email)
    return int(drive_to(service, "delivered", request_id=r.id).id)


def test_the_isolated_roi_and_the_guardrail_round_trip(any_service: Service) -> None:
    rid = _delivered(any_service)
    record_when_due(any_service, rid, "sales:P90D", result_data(145, comparison_value=125), ACTOR)
    record_when_due(any_service, rid, "aht:P90D", result_data(395), ACTOR)
    any_service.measure(rid, ACTOR)
    stored = any_service.show(rid)
    assert stored.roi is not None
    assert (stored.roi.benefits, stored.roi.raw_benefits, stored.roi.costs, stored.roi.roi_percent) == (
        20000, 45000, 15000, 33.3)
    assert [(r.item_id, r.outcome.value, r.guardrail, r.isolation) for r in stored.results] == [
        ("sales", "met", False, "control_group"), ("aht", "met", True, "none")]
    assert "guardrail at most 400: held" in report.build(stored).text
    measured = any_service.history(rid)[-1]
    assert measured.type == "measured" and measured.payload["roi"]["roi_percent"] == 33.3
    assert any_service.verify().ok


def test_an_early_result_writes_nothing(sql_service: Service, engine: Engine) -> None:
    rid = _delivered(sql_service)
    before = table_snapshot(engine)
    with pytest.raises(TransitionRefused, match="is due on"):
        sql_service.record(rid, "sales:P90D", result_data(145), ACTOR)
    assert table_snapshot(engine) == before
    sql_service.record(rid, "sales:P90D", result_data(145, early_reason="quarter closed early"), ACTOR)
    assert sql_service.history(rid)[-1].payload["early_reason"] == "quarter closed early"
    assert sql_service.verify().ok


def test_a_request_stored_before_the_evidence_fields_loads_measures_and_verifies(sql_service: Service,
                                                                                engine: Engine) -> None:
    """The document as the main branch wrote it: a plan with one program_cost, items without direction or
    isolation, checkpoints without comparison values or early reasons."""
    rid = drive_to(sql_service, "delivered").id
    for c in sql_service.show(rid).checkpoints:
        record_when_due(sql_service, rid, c.key, result_data(70.0), ACTOR)
    with engine.begin() as conn:
        doc = json.loads(conn.execute(select(requests.c.document).where(requests.c.id == rid)).scalar_one())
        for item in doc["plan"]["items"]:
            for key in ("direction", "guardrail", "isolation"):
                item.pop(key, None)
            item["target"] = {"value": item["target"]["value"], "date": item["target"]["date"]}
        doc["plan"]["costs"] = {"program_cost": 8000.0, "currency": "EUR"}
        for c in doc["checkpoints"]:
            c.pop("comparison_value", None)
            c.pop("early_reason", None)
        conn.execute(update(requests).where(requests.c.id == rid).values(document=json.dumps(doc)))
        events = conn.execute(select(audit_events.c.hash).order_by(audit_events.c.seq)).scalars().all()
    measured = sql_service.measure(rid, ACTOR)
    assert [(r.item_id, r.outcome.value, r.direction) for r in measured.results] == [
        ("m1", "partly_met", "increase"), ("m2", "met", "increase")]  # 62 -> 70 of 75: more than half way
    assert measured.roi is not None and measured.roi.costs == 8000 and measured.roi.benefits == 8000
    assert measured.roi.cost_lines == [{"category": "other", "amount": 8000.0, "description": "programme, not itemised",
                                        "currency": "EUR"}]
    with engine.begin() as conn:
        after = conn.execute(select(audit_events.c.hash).order_by(audit_events.c.seq)).scalars().all()
    assert after[:len(events)] == events  # the chain is untouched, only extended
    assert sql_service.verify().ok
