"""The service on the in-memory store: commands, versions, history, outbox and follow-ups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.testing import InMemoryStore
from flows.clock import FixedClock
from flows.service import Service
from states.errors import Conflict, InvalidInput, NotFound, TransitionRefused
from states.lifecycle import State
from tests.builders import (
    ACTOR,
    SPONSOR,
    T0,
    ack_data,
    approval_data,
    delivery_data,
    diagnosis_data,
    drive_to,
    intake_data,
    plan_data,
    record_when_due,
    result_data,
)


def outbox(service: Service) -> dict[str, str]:
    store = service.store
    assert isinstance(store, InMemoryStore)
    return {key: message.template for key, message in store.outbox.items()}


def test_submit_assigns_id_version_history_and_acknowledges_the_requester(memory_service: Service) -> None:
    request = memory_service.submit(intake_data(), ACTOR)
    assert (request.id, request.version, request.state) == (1, 1, State.RECEIVED)
    history = memory_service.history(1)
    assert [(e.seq, e.type, e.actor, e.version) for e in history] == [(1, "submitted", ACTOR, 1)]
    assert history[0].at == "2026-03-02T09:00:00.000000Z"
    assert history[0].payload["intake"]["title"] == "Objection handling course"
    assert outbox(memory_service) == {"1:intake_acknowledgement": "intake_acknowledgement"}
    note = memory_service.store.outbox["1:intake_acknowledgement"].notification  # type: ignore[attr-defined]
    assert [r["email"] for r in note["to"]] == ["rita.requester@example.org"]
    assert memory_service.submit(intake_data(), ACTOR).id == 2


def test_design_path_history_and_messages(memory_service: Service) -> None:
    request = drive_to(memory_service, "acknowledged")
    assert request.state == State.ACKNOWLEDGED and request.version == 11
    types = [e.type for e in memory_service.history(request.id)]
    assert types == ["submitted", "diagnosed", "plan_drafted", "plan_approved", "designed", "delivered",
                     "checkpoint_scheduled", "checkpoint_scheduled", "checkpoint_scheduled",
                     "result_recorded", "result_recorded", "result_recorded", "measured", "acknowledged"]
    assert sorted(outbox(memory_service).values()) == ["diagnosis_summary", "intake_acknowledgement",
                                                         "plan_approval_request", "request_delivered",
                                                         "results_report"]
    report = memory_service.store.outbox["1:results_report"].notification  # type: ignore[attr-defined]
    assert {r["email"] for r in report["to"]} == {"sam.sponsor@example.org", "rita.requester@example.org",
                                                  "hana.hr@example.org"}
    assert memory_service.verify().ok


def test_redirect_path(memory_service: Service) -> None:
    request = drive_to(memory_service, "acknowledged", path="redirect")
    transitions = [(e.from_state, e.to_state) for e in memory_service.history(request.id) if e.trigger]
    assert transitions == [("received", "diagnosed"), ("diagnosed", "redirected"), ("redirected", "delivered"),
                           ("delivered", "measured"), ("measured", "acknowledged")]
    assert request.redirect_record is not None and request.brief is None
    assert [r.path for r in request.recommendations] == ["tool_fix"]


def test_measure_compares_results_with_targets_and_computes_roi(memory_service: Service) -> None:
    request = drive_to(memory_service, "delivered")
    rid = request.id
    record_when_due(memory_service, rid, "m1:P30D", result_data(66.0), ACTOR)
    record_when_due(memory_service, rid, "m1:P90D", result_data(77.0), ACTOR)  # the latest result counts
    record_when_due(memory_service, rid, "m2:P1D", result_data(None, "survey tool down"), ACTOR)
    measured = memory_service.measure(rid, ACTOR)
    results = {r.item_id: r for r in measured.results}
    assert (results["m1"].result, results["m1"].outcome.value) == (77.0, "met")
    assert results["m2"].outcome.value == "no_data"
    assert measured.roi is not None
    assert (measured.roi.benefits, measured.roi.benefit_cost_ratio, measured.roi.roi_percent) == (15000.0, 1.88, 87.5)
    assert memory_service.history(rid)[-1].payload["roi"]["roi_percent"] == 87.5


def test_expect_version_mismatch_is_a_conflict_and_writes_nothing(memory_service: Service) -> None:
    rid = memory_service.submit(intake_data(), ACTOR).id
    with pytest.raises(Conflict) as info:
        memory_service.diagnose(rid, diagnosis_data(), ACTOR, expect_version=7)
    assert (info.value.expected, info.value.actual, info.value.exit_code) == (7, 1, 5)
    assert "Reload" in str(info.value)
    assert memory_service.show(rid).state == State.RECEIVED and len(memory_service.history(rid)) == 1
    assert memory_service.diagnose(rid, diagnosis_data(), ACTOR, expect_version=1).version == 2


def test_a_stale_copy_cannot_be_saved(memory_store: InMemoryStore, clock: FixedClock) -> None:
    service = Service(memory_store, clock)
    rid = service.submit(intake_data(), ACTOR).id
    first, second = memory_store.get(rid), memory_store.get(rid)
    first.add_note("first", T0)
    memory_store.save(first, ACTOR)
    second.add_note("second", T0)
    with pytest.raises(Conflict) as info:
        memory_store.save(second, ACTOR)
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert [e.payload.get("text") for e in memory_store.history(rid)] == [None, "first"]


def test_unknown_request_is_not_found(memory_service: Service) -> None:
    for call in (lambda: memory_service.show(9), lambda: memory_service.history(9),
                 lambda: memory_service.diagnose(9, diagnosis_data(), ACTOR),
                 lambda: memory_service.measure(9, ACTOR)):
        with pytest.raises(NotFound) as info:
            call()
        assert "request 9" in str(info.value) and info.value.exit_code == 4


def test_unknown_checkpoint_is_not_found_and_names_the_known_ones(memory_service: Service) -> None:
    rid = drive_to(memory_service, "delivered").id
    with pytest.raises(NotFound) as info:
        record_when_due(memory_service, rid, "m7:P30D", result_data(), ACTOR)
    assert "m7:P30D" in str(info.value) and "1:m1:P30D" in str(info.value)


def test_a_checkpoint_is_recorded_once(memory_service: Service) -> None:
    rid = drive_to(memory_service, "delivered").id
    record_when_due(memory_service, rid, "m1:P30D", result_data(70), ACTOR)
    version = memory_service.show(rid).version
    with pytest.raises(TransitionRefused) as info:
        record_when_due(memory_service, rid, "1:m1:P30D", result_data(80), ACTOR)
    assert "already closed" in str(info.value)
    assert memory_service.show(rid).version == version
    assert memory_service.show(rid).checkpoint("m1:P30D").value == 70


def test_notes_are_recorded_and_empty_ones_refused(memory_service: Service) -> None:
    rid = memory_service.submit(intake_data(), ACTOR).id
    memory_service.add_note(rid, "  Sponsor confirmed budget.  ", ACTOR, source="email")
    assert memory_service.history(rid)[-1].payload == {"text": "Sponsor confirmed budget.", "source": "email"}
    with pytest.raises(InvalidInput) as info:
        memory_service.add_note(rid, " \n ", ACTOR)
    assert [e.field for e in info.value.errors] == ["text"]
    assert memory_service.show(rid).version == 2


# --- follow-ups --------------------------------------------------------------------------------------

def test_checkpoints_are_scheduled_from_the_delivery_end_date(memory_service: Service) -> None:
    request = drive_to(memory_service, "delivered")
    due = {c.key: c.due_at for c in request.checkpoints}
    end = datetime(2026, 4, 20, 9, 0, tzinfo=UTC)  # delivery_data(): 6 April + 14 days, 09:00 UTC
    assert due == {"1:m1:P30D": end + timedelta(days=30), "1:m1:P90D": end + timedelta(days=90),
                   "1:m2:P1D": end + timedelta(days=1)}
    assert memory_service.store.due_checkpoints(end) == []
    assert memory_service.store.due_checkpoints(end + timedelta(days=30)) == [(1, "1:m2:P1D"), (1, "1:m1:P30D")]
    assert memory_service.store.due_checkpoints(end + timedelta(days=30), limit=1) == [(1, "1:m2:P1D")]


def test_due_checkpoints_fire_once(memory_service: Service, clock: FixedClock) -> None:
    rid = drive_to(memory_service, "delivered").id
    clock.set(datetime(2026, 4, 21, 10, tzinfo=UTC))
    first = memory_service.send_due_checkpoints(ACTOR, timedelta(days=14))
    assert (first["sent"], first["flagged"]) == (1, 0)
    assert (memory_service.send_due_checkpoints(ACTOR, timedelta(days=14))["sent"]) == 0
    c = memory_service.show(rid).checkpoint("m2:P1D")
    assert c.status.value == "sent" and c.sent_at == clock.now()
    assert {"1:survey:m2:P1D", "1:checkpoint_reminder:m2:P1D"} <= set(outbox(memory_service))
    assert [e.type for e in memory_service.history(rid)].count("survey_sent") == 1


def test_far_too_late_checkpoints_are_flagged_not_sent(memory_service: Service, clock: FixedClock) -> None:
    rid = drive_to(memory_service, "delivered").id
    clock.set(datetime(2026, 6, 1, 9, tzinfo=UTC))  # P1D is 40 days late, P30D 12 days late
    counts = memory_service.send_due_checkpoints(ACTOR, timedelta(days=14))
    assert (counts["sent"], counts["flagged"]) == (1, 1)
    request = memory_service.show(rid)
    assert request.checkpoint("m2:P1D").status.value == "needs_review"
    assert request.checkpoint("m1:P30D").status.value == "sent"
    assert "1:survey:m2:P1D" not in outbox(memory_service)
    assert memory_service.send_due_checkpoints(ACTOR, timedelta(days=14))["flagged"] == 0  # flagged once


def test_reminders_follow_unanswered_surveys_up_to_the_limit(memory_service: Service, clock: FixedClock) -> None:
    rid = drive_to(memory_service, "delivered").id
    clock.set(datetime(2026, 4, 21, 10, tzinfo=UTC))
    memory_service.send_due_checkpoints(ACTOR, timedelta(days=14))
    assert memory_service.send_reminders(ACTOR, timedelta(days=3), 2) == 0  # too soon
    for _ in range(3):
        clock.advance(timedelta(days=3))
        memory_service.send_reminders(ACTOR, timedelta(days=3), 2)
    c = memory_service.show(rid).checkpoint("m2:P1D")
    assert c.reminders_sent == 2
    assert {"1:survey_reminder:m2:P1D:1", "1:survey_reminder:m2:P1D:2"} <= set(outbox(memory_service))
    assert memory_service.store.unanswered_checkpoints(clock.now(), max_reminders=2) == []
    record_when_due(memory_service, rid, "m2:P1D", result_data(4.5), ACTOR)
    assert memory_service.store.unanswered_checkpoints(clock.now()) == []


def test_cancel_closes_open_checkpoints(memory_service: Service, clock: FixedClock) -> None:
    rid = drive_to(memory_service, "delivered").id
    record_when_due(memory_service, rid, "m2:P1D", result_data(4.4), ACTOR)
    with pytest.raises(TransitionRefused):
        memory_service.cancel(rid, {"reason": " "}, ACTOR)
    request = memory_service.cancel(rid, {"reason": "team reorganised"}, ACTOR)
    assert request.state == State.CANCELLED and request.closing_reason == "team reorganised"
    statuses = {c.item_id + c.offset: (c.status.value, c.missed_reason) for c in request.checkpoints}
    assert statuses == {"m2P1D": ("closed", ""), "m1P30D": ("missed", "request cancelled: team reorganised"),
                        "m1P90D": ("missed", "request cancelled: team reorganised")}
    clock.advance(timedelta(days=400))
    assert memory_service.store.due_checkpoints(clock.now()) == []
    assert memory_service.send_due_checkpoints(ACTOR, timedelta(days=1000))["sent"] == 0


def test_plan_is_approved_by_the_sponsor_only(memory_service: Service) -> None:
    rid = memory_service.submit(intake_data(), ACTOR).id
    memory_service.draft_plan(rid, plan_data(), ACTOR)
    with pytest.raises(TransitionRefused) as info:
        memory_service.approve_plan(rid, approval_data("rita.requester@example.org"), ACTOR)
    assert "approval by the sponsor sam.sponsor@example.org" in info.value.missing[0]
    approved = memory_service.approve_plan(rid, approval_data(), SPONSOR)
    assert approved.plan_approved_by == "sam.sponsor@example.org" and approved.plan_approved_at == T0


def test_acknowledge_sends_the_results_report_once(memory_service: Service) -> None:
    request = drive_to(memory_service, "measured")
    memory_service.acknowledge(request.id, ack_data(), ACTOR)
    assert list(outbox(memory_service).values()).count("results_report") == 1


def test_delivery_dates_must_be_in_order(memory_service: Service) -> None:
    rid = drive_to(memory_service, "designed").id
    with pytest.raises(InvalidInput) as info:
        memory_service.deliver(rid, delivery_data(days=-1), ACTOR)
    assert "end_date is before start_date" in str(info.value)
    assert memory_service.show(rid).state == State.DESIGNED
